"""Cohen's and Fleiss' kappa and gold accuracy against values worked by hand."""

from __future__ import annotations

import math

import pytest

from al_ray.errors import DataError
from al_ray.labeling.aggregation import Vote
from al_ray.labeling.agreement import (
    cohen_kappa,
    fleiss_kappa,
    gold_accuracy,
    pairwise_cohen,
)


def test_cohen_two_classes_by_hand():
    # 10 items. Both "yes": 4, A yes / B no: 2, A no / B yes: 1, both "no": 3.
    # p_o = (4 + 3) / 10 = 0.7. A labels 6/10 yes, B labels 5/10 yes, so
    # p_e = 0.6 * 0.5 + 0.4 * 0.5 = 0.5 and kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4.
    a = ["yes"] * 4 + ["yes"] * 2 + ["no"] * 1 + ["no"] * 3
    b = ["yes"] * 4 + ["no"] * 2 + ["yes"] * 1 + ["no"] * 3

    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_three_classes_by_hand():
    # Agreement on items 0, 2, 3, 4: p_o = 4/6. Shares: A (c, d, e) = (2, 2, 2)/6,
    # B = (2, 3, 1)/6, so p_e = (2*2 + 2*3 + 2*1) / 36 = 1/3 and
    # kappa = (2/3 - 1/3) / (1 - 1/3) = 0.5.
    a = ["c", "c", "d", "d", "e", "e"]
    b = ["c", "d", "d", "d", "e", "c"]

    assert cohen_kappa(a, b) == pytest.approx(0.5)


def test_cohen_perfect_and_opposite():
    assert cohen_kappa(["x", "y", "x", "y"], ["x", "y", "x", "y"]) == 1.0
    # p_o = 0, p_e = 0.5 * 0.5 + 0.5 * 0.5 = 0.5, kappa = -0.5 / 0.5 = -1.
    assert cohen_kappa(["x", "y", "x", "y"], ["y", "x", "y", "x"]) == pytest.approx(-1.0)


def test_cohen_degenerate_cases_are_nan():
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa(["x"], ["x"]))
    # Both raters always give the same single class: p_e = 1.
    assert math.isnan(cohen_kappa(["x", "x", "x"], ["x", "x", "x"]))


def test_cohen_one_constant_rater_is_zero():
    # A is constant, B is not: p_o = 2/4, p_e = 1 * 2/4, kappa = 0.
    assert cohen_kappa(["x"] * 4, ["x", "x", "y", "y"]) == pytest.approx(0.0)


def test_cohen_length_mismatch():
    with pytest.raises(DataError, match=r"got 2 and 3 labels"):
        cohen_kappa(["x", "y"], ["x", "y", "x"])


def votes_from_table(table: list[list[int]], classes: list[str]) -> list[Vote]:
    """Votes from a count table: table[i][j] raters put item i in class j."""
    votes = []
    for row_id, counts in enumerate(table):
        rater = 0
        for label, count in zip(classes, counts):
            for _ in range(count):
                votes.append(Vote(row_id, f"rater_{rater}", label))
                rater += 1
    return votes


def test_fleiss_fourteen_raters_by_hand():
    # 10 items, 14 raters each, 5 classes.
    # Column totals (20, 28, 39, 21, 32) of 140 votes give
    # p_e = (20^2 + 28^2 + 39^2 + 21^2 + 32^2) / 140^2 = 4170 / 19600.
    # Per item, sum_j n_ij (n_ij - 1) = sum_j n_ij^2 - 14; over the 10 items these are
    # 182, 46, 56, 80, 60, 84, 44, 32, 52, 52 = 688, each out of 14 * 13 = 182, so
    # p_o = 688 / 1820 and kappa = (688/1820 - 4170/19600) / (1 - 4170/19600) = 0.20993.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    classes = ["1", "2", "3", "4", "5"]
    expected = (688 / 1820 - 4170 / 19600) / (1 - 4170 / 19600)

    kappa = fleiss_kappa(votes_from_table(table, classes), classes)

    assert kappa == pytest.approx(expected)
    assert kappa == pytest.approx(0.20993, abs=5e-6)


def test_fleiss_varying_raters_by_hand():
    # Row 0: a a a (agreement 6/6 = 1), row 1: a b (0/2 = 0), row 2: b b (2/2 = 1),
    # row 3: a alone (left out). p_o = (1 + 0 + 1) / 3 = 2/3.
    # pi_a = (1 + 1/2 + 0) / 3 = 1/2, pi_b = 1/2, p_e = 1/2, kappa = (2/3 - 1/2) / (1/2) = 1/3.
    votes = [
        Vote(0, "r1", "a"), Vote(0, "r2", "a"), Vote(0, "r3", "a"),
        Vote(1, "r1", "a"), Vote(1, "r2", "b"),
        Vote(2, "r2", "b"), Vote(2, "r3", "b"),
        Vote(3, "r1", "a"),
    ]

    assert fleiss_kappa(votes, ["a", "b"]) == pytest.approx(1 / 3)


def test_fleiss_equals_two_rater_scott_pi():
    # With two votes on every row Fleiss' kappa is Scott's pi: pooled shares.
    # Rows (x,x), (x,y), (y,y), (y,y): p_o = (1 + 0 + 1 + 1) / 4 = 3/4,
    # pi_x = (1 + 1/2 + 0 + 0) / 4 = 3/8, pi_y = 5/8, p_e = 9/64 + 25/64 = 34/64,
    # kappa = (48/64 - 34/64) / (30/64) = 14/30.
    pairs = [("x", "x"), ("x", "y"), ("y", "y"), ("y", "y")]
    votes = [Vote(row, rater, label) for row, pair in enumerate(pairs) for rater, label in zip("ab", pair)]

    assert fleiss_kappa(votes, ["x", "y"]) == pytest.approx(14 / 30)


def test_fleiss_degenerate_cases_are_nan():
    same_class = [Vote(row, rater, "a") for row in range(5) for rater in ("r1", "r2")]
    one_rated_row = [Vote(0, "r1", "a"), Vote(0, "r2", "b"), Vote(1, "r1", "a")]

    assert math.isnan(fleiss_kappa(same_class, ["a", "b"]))
    assert math.isnan(fleiss_kappa(one_rated_row, ["a", "b"]))
    assert math.isnan(fleiss_kappa([], ["a", "b"]))


def test_fleiss_label_outside_classes():
    votes = [Vote(0, "r1", "a"), Vote(0, "r2", "zebra")]

    with pytest.raises(DataError, match=r"label 'zebra' of annotator 'r2' on row_id 0 is not a class"):
        fleiss_kappa(votes, ["a", "b"])


def test_pairwise_cohen_shared_rows_only():
    votes = [
        # alice and bob share rows 1-4, as in the perfect-agreement case.
        Vote(1, "alice", "x"), Vote(2, "alice", "y"), Vote(3, "alice", "x"), Vote(4, "alice", "y"),
        Vote(1, "bob", "x"), Vote(2, "bob", "y"), Vote(3, "bob", "x"), Vote(4, "bob", "y"),
        # carol shares only row 1 with each of them: no pair.
        Vote(1, "carol", "y"), Vote(9, "carol", "x"),
    ]

    result = pairwise_cohen(votes)

    assert result == {("alice", "bob"): (1.0, 4)}


def test_gold_accuracy_per_annotator():
    gold = {10: "cat", 11: "dog", 12: "cat"}
    votes = [
        Vote(10, "alice", "cat"), Vote(11, "alice", "dog"), Vote(12, "alice", "dog"),
        Vote(10, "bob", "cat"),
        Vote(99, "bob", "dog"),  # not a gold row
        Vote(99, "carol", "cat"),  # carol saw no gold row
    ]

    result = gold_accuracy(votes, gold)

    assert result == {"alice": (2, 3, 2 / 3), "bob": (1, 1, 1.0)}


def test_gold_accuracy_no_gold_rows():
    assert gold_accuracy([Vote(1, "alice", "cat")], {}) == {}
