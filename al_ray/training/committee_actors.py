"""Committee members as Ray actors that retrain in parallel on bootstrap samples.

Each member is one actor holding its unfitted estimator. Every round the
labeled features and labels go to the object store once. Each member then
draws its bootstrap sample with a seed derived from the run's root seed, the
member index and the round, fits, and returns its fitted model. Because the seed is a
function of (root seed, member, round) only, an actor that dies mid-round is
restarted by Ray, retries the fit, and returns the same model, so the round's
selection does not change.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from al_ray.models import SklearnClassifier
from al_ray.models.committee import Committee
from al_ray.seeding import spawn_seeds

__all__ = ["CommitteeTrainer", "bootstrap_indices"]

logger = logging.getLogger(__name__)


def bootstrap_indices(n_rows: int, seed: int) -> np.ndarray:
    """Return ``n_rows`` positions drawn with replacement, from ``seed`` alone."""
    return np.random.default_rng(seed).integers(0, n_rows, size=n_rows)


class _Member:
    """The actor body: one committee member's estimator."""

    def __init__(self, estimator: BaseEstimator, classes: Sequence[str], bootstrap: bool) -> None:
        self.estimator = estimator
        self.classes = tuple(classes)
        self.bootstrap = bootstrap

    def fit(self, data: list, seed: int) -> SklearnClassifier:
        import ray

        # The reference sits in a list so Ray passes it through unresolved and the
        # arrays are fetched once per actor, zero-copy from the object store.
        features, labels = ray.get(data[0])
        if self.bootstrap:
            rows = bootstrap_indices(len(labels), seed)
            features, labels = features[rows], labels[rows]
        return SklearnClassifier(self.estimator, self.classes).fit(features, labels)

    def pid(self) -> int:
        import os

        return os.getpid()


class CommitteeTrainer:
    """Train a committee of ``len(estimators)`` members on Ray actors.

    Parameters
    ----------
    estimators : list of unfitted estimators, one per member (bagging passes
        the same estimator several times).
    classes : the full class list.
    root_seed : the run's root seed; member seeds are spawned from it per round.
    bootstrap : draw each member's training set with replacement.
    actor_num_cpus : CPUs reserved per member actor. Fractions below 1 keep
        several members and Ray Data's tasks schedulable on small machines.
    """

    needs_ray = True

    def __init__(
        self,
        estimators: Sequence[BaseEstimator],
        classes: Sequence[str],
        root_seed: int,
        *,
        bootstrap: bool = True,
        actor_num_cpus: float = 0.2,
    ) -> None:
        self.estimators = list(estimators)
        self.classes = tuple(classes)
        self.root_seed = root_seed
        self.bootstrap = bootstrap
        self.actor_num_cpus = actor_num_cpus
        self.actors: list = []

    def _start(self) -> None:
        import ray

        member_class = ray.remote(_Member).options(
            num_cpus=self.actor_num_cpus, max_restarts=2, max_task_retries=2
        )
        self.actors = [member_class.remote(estimator, self.classes, self.bootstrap) for estimator in self.estimators]
        logger.info("started %d committee member actors", len(self.actors))

    def fit(self, features: np.ndarray, labels: np.ndarray, round_index: int, previous=None) -> Committee:
        """Fit every member in parallel and return the fitted committee."""
        import ray

        if not self.actors:
            self._start()
        data = ray.put((np.asarray(features), np.asarray(labels, dtype=np.int64)))
        seeds = spawn_seeds(self.root_seed, "committee", len(self.actors), round_index)
        members = ray.get([actor.fit.remote([data], seed) for actor, seed in zip(self.actors, seeds)])
        return Committee(members)

    def close(self) -> None:
        """Stop the member actors."""
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
