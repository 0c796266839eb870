"""Dawid-Skene and aggregate(): recovery where majority fails, invariants, method choice."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from al_ray.errors import ConfigError, DataError
from al_ray.labeling.aggregation import (
    Vote,
    aggregate,
    dawid_skene,
    majority_vote,
    select_method,
)

CLASSES = ["0", "1", "2"]


def crowd_with_spammers(seed: int = 7, n_rows: int = 150) -> tuple[np.ndarray, list[Vote]]:
    """Two careful annotators (90% right), two who always answer "0", one who guesses.

    On a row whose true class is not "0", the careful pair votes for it and the
    "0" pair against it, so the guesser decides: majority vote is right only
    when the guess matches the true class.
    """
    rng = np.random.default_rng(seed)
    truth = rng.integers(len(CLASSES), size=n_rows)
    votes = []
    for row_id in range(n_rows):
        true_class = int(truth[row_id])
        for annotator in ("careful_1", "careful_2"):
            answer = true_class if rng.random() < 0.9 else int(rng.integers(len(CLASSES)))
            votes.append(Vote(row_id, annotator, str(answer)))
        for annotator in ("always_0_a", "always_0_b"):
            votes.append(Vote(row_id, annotator, "0"))
        votes.append(Vote(row_id, "guesser", str(int(rng.integers(len(CLASSES))))))
    return truth, votes


def accuracy(labels: dict[int, str | None], truth: np.ndarray) -> float:
    return float(np.mean([labels[row_id] == str(truth[row_id]) for row_id in range(len(truth))]))


def test_dawid_skene_beats_majority_with_spammers():
    truth, votes = crowd_with_spammers()

    fit = dawid_skene(votes, CLASSES)
    ds_labels = {row_id: CLASSES[int(np.argmax(p))] for row_id, p in fit.posteriors.items()}
    majority = majority_vote(votes, tie_rule="random", seed=1)

    assert fit.converged
    assert accuracy(ds_labels, truth) >= 0.9
    assert accuracy({row: agg.label for row, agg in majority.items()}, truth) <= 0.7


def test_dawid_skene_learns_spammer_confusion():
    _, votes = crowd_with_spammers()

    fit = dawid_skene(votes, CLASSES)

    # Whatever the true class, the "always 0" annotator gives "0".
    assert np.all(fit.confusion["always_0_a"][:, 0] > 0.99)
    # The careful annotator's diagonal dominates each row of its confusion matrix.
    careful = fit.confusion["careful_1"]
    assert np.all(np.argmax(careful, axis=1) == np.arange(len(CLASSES)))
    assert np.all(np.diag(careful) > 0.8)


def test_aggregate_auto_picks_dawid_skene_and_recovers():
    truth, votes = crowd_with_spammers()

    assert select_method(votes, "auto", min_answers_per_annotator=20) == "dawid_skene"
    result = aggregate(votes, CLASSES, method="auto", min_answers_per_annotator=20)

    assert accuracy({row: agg.label for row, agg in result.items()}, truth) >= 0.9
    assert all(agg.n_votes == 5 for agg in result.values())
    assert all(0.0 <= agg.confidence <= 1.0 for agg in result.values())


def test_dawid_skene_estimates_sum_to_one():
    _, votes = crowd_with_spammers(seed=3, n_rows=60)

    fit = dawid_skene(votes, CLASSES)

    assert fit.classes == tuple(CLASSES)
    assert np.isclose(fit.class_prior.sum(), 1.0)
    for posterior in fit.posteriors.values():
        assert posterior.shape == (3,)
        assert np.isclose(posterior.sum(), 1.0)
    for matrix in fit.confusion.values():
        assert matrix.shape == (3, 3)
        assert np.allclose(matrix.sum(axis=1), 1.0)


def test_dawid_skene_prior_keeps_unseen_cells_positive():
    # No annotator ever gives "2", yet its cells stay above zero.
    votes = [Vote(row, name, "0" if row % 2 else "1") for row in range(10) for name in "ab"]

    fit = dawid_skene(votes, CLASSES, prior=0.01)

    for matrix in fit.confusion.values():
        assert np.all(matrix > 0)
    assert np.all(fit.class_prior > 0)


def test_dawid_skene_hand_checked_single_vote():
    # One row, one vote "1": M-step from the soft label (0, 1, 0) with prior 1 gives
    # class_prior = (0+1, 1+1, 0+1) / (1 + 3) = (1/4, 1/2, 1/4) and confusion row
    # k=1 = (1, 2, 1) / 4, rows k=0 and k=2 = (1, 1, 1) / 3. The E-step posterior is
    # proportional to prior[k] * confusion[k, 1] = (1/12, 1/4, 1/12), so (1/5, 3/5, 1/5).
    fit = dawid_skene([Vote(0, "a", "1")], CLASSES, prior=1.0, max_iter=1)

    assert np.allclose(fit.class_prior, [0.25, 0.5, 0.25])
    assert np.allclose(fit.confusion["a"], [[1 / 3] * 3, [0.25, 0.5, 0.25], [1 / 3] * 3])
    assert np.allclose(fit.posteriors[0], [0.2, 0.6, 0.2])
    assert fit.iterations == 1


def test_dawid_skene_many_votes_stay_finite():
    # 400 agreeing votes on one row would underflow a product of probabilities.
    votes = [Vote(0, f"annotator_{index}", "2") for index in range(400)]
    votes += [Vote(1, f"annotator_{index}", "0") for index in range(400)]

    fit = dawid_skene(votes, CLASSES)

    assert np.all(np.isfinite(fit.posteriors[0]))
    assert np.argmax(fit.posteriors[0]) == 2
    assert np.argmax(fit.posteriors[1]) == 0


def test_dawid_skene_empty_votes():
    fit = dawid_skene([], CLASSES)

    assert fit.posteriors == {}
    assert fit.confusion == {}
    assert np.allclose(fit.class_prior, [1 / 3] * 3)
    assert fit.converged


def test_dawid_skene_warns_when_not_converged(caplog):
    _, votes = crowd_with_spammers(n_rows=60)

    with caplog.at_level(logging.WARNING, logger="al_ray.labeling.aggregation"):
        fit = dawid_skene(votes, CLASSES, max_iter=2)

    assert not fit.converged
    assert fit.iterations == 2
    assert "did not converge in 2 iterations" in caplog.text


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"max_iter": 0}, r"max_iter must be an integer >= 1, got 0"),
        ({"tol": 0.0}, r"tol must be a finite number > 0, got 0.0"),
        ({"prior": 0.0}, r"prior must be a finite number > 0, got 0.0"),
    ],
)
def test_dawid_skene_rejects_bad_settings(settings_, message):
    with pytest.raises(ConfigError, match=message):
        dawid_skene([Vote(0, "a", "1")], CLASSES, **settings_)


def test_dawid_skene_label_outside_classes():
    with pytest.raises(DataError, match=r"label '7' of annotator 'a' on row_id 0 is not a class"):
        dawid_skene([Vote(0, "a", "7")], CLASSES)


def test_dawid_skene_rejects_repeated_classes():
    with pytest.raises(DataError, match=r"classes must be unique, got repeats: \['1'\]"):
        dawid_skene([Vote(0, "a", "1")], ["1", "1"])


def test_select_method_rules():
    one_each = [Vote(row, "a", "0") for row in range(30)]
    overlapping = one_each + [Vote(row, "b", "0") for row in range(30)]
    short_annotator = overlapping + [Vote(0, "c", "1")]

    assert select_method([], "auto") == "majority"
    assert select_method(one_each, "auto", min_answers_per_annotator=20) == "majority"
    assert select_method(overlapping, "auto", min_answers_per_annotator=20) == "dawid_skene"
    assert select_method(short_annotator, "auto", min_answers_per_annotator=20) == "majority"
    assert select_method(short_annotator, "dawid_skene") == "dawid_skene"
    assert select_method(overlapping, "majority") == "majority"


def test_select_method_unknown():
    with pytest.raises(ConfigError, match=r"aggregation method must be one of \['auto', 'majority', 'dawid_skene'\], got 'mean'"):
        select_method([], "mean")


def test_aggregate_majority_defers_ties():
    votes = [Vote(1, "a", "0"), Vote(1, "b", "1"), Vote(2, "a", "2")]

    result = aggregate(votes, CLASSES, method="majority", tie_rule="defer")

    assert result[1].label is None
    assert result[1].tied
    assert result[2].label == "2"


def test_aggregate_dawid_skene_tie_follows_rule():
    # Two annotators who disagree on every row are symmetric, so posteriors tie.
    votes = []
    for row in range(4):
        votes += [Vote(row, "a", "0", answered_at=1.0), Vote(row, "b", "1", answered_at=2.0)]

    deferred = aggregate(votes, ["0", "1"], method="dawid_skene", tie_rule="defer")
    first = aggregate(votes, ["0", "1"], method="dawid_skene", tie_rule="first")

    assert all(agg.tied and agg.label is None for agg in deferred.values())
    assert all(agg.label == "0" for agg in first.values())


vote_tables = st.dictionaries(
    keys=st.tuples(st.integers(0, 8), st.sampled_from(["a", "b", "c"])),
    values=st.sampled_from(CLASSES),
    min_size=1,
    max_size=27,
)


@settings(max_examples=15, deadline=None)
@given(table=vote_tables, data=st.data())
def test_dawid_skene_posteriors_normalised_and_order_free(table, data):
    votes = [Vote(row, annotator, label) for (row, annotator), label in table.items()]
    shuffled = data.draw(st.permutations(votes))

    fit = dawid_skene(votes, CLASSES)
    again = dawid_skene(shuffled, CLASSES)

    assert set(fit.posteriors) == {vote.row_id for vote in votes}
    for row_id, posterior in fit.posteriors.items():
        assert np.all(np.isfinite(posterior))
        assert np.all(posterior >= 0)
        assert np.isclose(posterior.sum(), 1.0)
        assert np.array_equal(posterior, again.posteriors[row_id])
    assert aggregate(votes, CLASSES, method="dawid_skene") == aggregate(
        shuffled, CLASSES, method="dawid_skene"
    )
