"""Kappa invariants over generated votes, and agreement with scikit-learn's Cohen's kappa."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from al_ray.labeling.aggregation import Vote
from al_ray.labeling.agreement import cohen_kappa, fleiss_kappa, pairwise_cohen

CLASSES = ["a", "b", "c"]

label_pairs = st.lists(st.tuples(st.sampled_from(CLASSES), st.sampled_from(CLASSES)), max_size=40)


@settings(max_examples=100, deadline=None)
@given(pairs=label_pairs)
def test_cohen_in_range_or_nan(pairs):
    kappa = cohen_kappa([a for a, _ in pairs], [b for _, b in pairs])

    assert math.isnan(kappa) or -1.0 <= kappa <= 1.0


@settings(max_examples=100, deadline=None)
@given(pairs=label_pairs)
def test_cohen_matches_scikit_learn(pairs):
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    kappa = cohen_kappa(a, b)

    if math.isnan(kappa):
        return
    assert kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(pairs=label_pairs)
def test_cohen_symmetric(pairs):
    a, b = [x for x, _ in pairs], [y for _, y in pairs]

    first, second = cohen_kappa(a, b), cohen_kappa(b, a)

    assert (math.isnan(first) and math.isnan(second)) or first == pytest.approx(second)


vote_tables = st.dictionaries(
    keys=st.tuples(st.integers(0, 10), st.sampled_from(["r1", "r2", "r3", "r4", "r5"])),
    values=st.sampled_from(CLASSES),
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(table=vote_tables, data=st.data())
def test_fleiss_in_range_and_order_free(table, data):
    votes = [Vote(row, rater, label) for (row, rater), label in table.items()]
    shuffled = data.draw(st.permutations(votes))

    kappa = fleiss_kappa(votes, CLASSES)

    assert math.isnan(kappa) or -1.0 <= kappa <= 1.0
    again = fleiss_kappa(shuffled, CLASSES)
    assert (math.isnan(kappa) and math.isnan(again)) or kappa == again


@settings(max_examples=60, deadline=None)
@given(table=vote_tables)
def test_pairwise_cohen_in_range(table):
    votes = [Vote(row, rater, label) for (row, rater), label in table.items()]

    for (first, second), (kappa, shared) in pairwise_cohen(votes).items():
        assert first < second
        assert shared >= 2
        assert math.isnan(kappa) or -1.0 <= kappa <= 1.0
