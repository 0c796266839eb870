"""Committee members on Ray actors: parallel bootstrap fits, aligned classes, restarts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from al_ray.errors import ModelError
from al_ray.models import SklearnClassifier
from al_ray.models.committee import Committee
from al_ray.training import CommitteeTrainer
from al_ray.training.committee_actors import bootstrap_indices

CLASSES = ["0", "1", "2", "3"]


def _data(seed: int = 0, n_rows: int = 60):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n_rows)
    features = rng.normal(size=(n_rows, 3)) + labels[:, None] * 2.0
    return features, labels


def _trainer(members: int = 3, seed: int = 7) -> CommitteeTrainer:
    return CommitteeTrainer([LogisticRegression(max_iter=200)] * members, CLASSES, seed, actor_num_cpus=0.2)


def test_members_differ_and_repeat(ray_local):
    features, labels = _data()
    first, second = _trainer(), _trainer()
    try:
        committee = first.fit(features, labels, round_index=1)
        again = second.fit(features, labels, round_index=1)
        next_round = second.fit(features, labels, round_index=2)
    finally:
        first.close()
        second.close()
    rows = features[:10]
    stacked = committee.committee_proba(rows)
    assert stacked.shape == (3, 10, 4)
    # Bootstrap samples differ per member, so members disagree somewhere.
    assert not np.allclose(stacked[0], stacked[1])
    # Same root seed and round: identical committee, whatever actors ran it.
    np.testing.assert_array_equal(stacked, again.committee_proba(rows))
    # Another round draws other samples.
    assert not np.array_equal(stacked, next_round.committee_proba(rows))
    np.testing.assert_allclose(committee.predict_proba(rows), stacked.mean(axis=0))


def test_member_missing_classes_aligned(ray_local):
    # Only 3 labeled rows: most bootstrap bags miss classes, some hold a single one.
    features = np.array([[0.0], [5.0], [10.0]])
    labels = np.array([0, 1, 3])
    trainer = CommitteeTrainer([LogisticRegression()] * 6, CLASSES, 11)
    try:
        committee = trainer.fit(features, labels, round_index=1)
    finally:
        trainer.close()
    proba = committee.committee_proba(np.array([[1.0], [9.0]]))
    assert proba.shape == (6, 2, 4)
    np.testing.assert_array_equal(proba[:, :, 2], 0.0)  # class "2" was never labeled
    np.testing.assert_allclose(proba.sum(axis=2), 1.0)


def test_single_class_bag():
    # Seed chosen so that every draw of 2 rows from 2 lands on one row.
    seed = next(s for s in range(1000) if len(set(bootstrap_indices(2, s).tolist())) == 1)
    rows = bootstrap_indices(2, seed)
    member = SklearnClassifier(LogisticRegression(), CLASSES).fit(
        np.array([[0.0], [1.0]])[rows], np.array([1, 2])[rows]
    )
    proba = member.predict_proba(np.zeros((1, 1)))
    assert proba.max() == 1.0


def test_killed_member_restarts_same_result(ray_local):
    features, labels = _data(seed=3)
    reference_trainer = _trainer(seed=5)
    trainer = _trainer(seed=5)
    try:
        reference = reference_trainer.fit(features, labels, round_index=4)
        trainer.fit(features, labels, round_index=3)
        victim = trainer.actors[1]
        old_pid = ray_local.get(victim.pid.remote())
        # Kill the member while this round's fit is in flight; Ray restarts the
        # actor and retries the task with the same seed.
        data = ray_local.put((features, labels))
        from al_ray.seeding import spawn_seeds

        seeds = spawn_seeds(5, "committee", 3, 4)
        pending = [actor.fit.remote([data], seed) for actor, seed in zip(trainer.actors, seeds)]
        ray_local.kill(victim, no_restart=False)
        members = ray_local.get(pending, timeout=120)
        assert ray_local.get(victim.pid.remote(), timeout=120) != old_pid
    finally:
        reference_trainer.close()
        trainer.close()
    rows = features[:20]
    np.testing.assert_array_equal(Committee(members).committee_proba(rows), reference.committee_proba(rows))


def test_committee_needs_two():
    member = SklearnClassifier(LogisticRegression(), CLASSES)
    with pytest.raises(ModelError, match="at least 2 members, got 1"):
        Committee([member])
