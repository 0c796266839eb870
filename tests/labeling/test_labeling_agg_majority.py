"""Majority vote: plurality, each tie rule, validation, and order independence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from al_ray.errors import ConfigError, DataError
from al_ray.labeling.aggregation import Aggregate, Vote, majority_vote

CLASSES = ["cat", "dog", "eel"]


def tied_votes(row_id: int = 1) -> list[Vote]:
    # cat answered at t=5, dog at t=3: a 1-1 tie where dog came first.
    return [
        Vote(row_id, "alice", "cat", answered_at=5.0),
        Vote(row_id, "bob", "dog", answered_at=3.0),
    ]


def test_majority_plurality_wins():
    votes = [Vote(7, "a", "cat"), Vote(7, "b", "cat"), Vote(7, "c", "dog")]

    result = majority_vote(votes)

    assert result == {7: Aggregate(row_id=7, label="cat", n_votes=3, confidence=2 / 3, tied=False)}


def test_majority_single_vote():
    result = majority_vote([Vote(3, "a", "eel")])

    assert result[3].label == "eel"
    assert result[3].confidence == 1.0
    assert result[3].tied is False


def test_majority_tie_defer():
    result = majority_vote(tied_votes(), tie_rule="defer")

    assert result[1] == Aggregate(row_id=1, label=None, n_votes=2, confidence=0.5, tied=True)


def test_majority_tie_first_takes_earliest_label():
    result = majority_vote(tied_votes(), tie_rule="first")

    assert result[1].label == "dog"
    assert result[1].tied is True
    assert result[1].confidence == 0.5


def test_majority_tie_first_uses_earliest_vote_per_label():
    # cat has votes at t=9 and t=1, dog at t=2 and t=4: cat's earliest vote (t=1) wins.
    votes = [
        Vote(1, "a", "cat", 9.0),
        Vote(1, "b", "dog", 2.0),
        Vote(1, "c", "cat", 1.0),
        Vote(1, "d", "dog", 4.0),
    ]

    assert majority_vote(votes, tie_rule="first")[1].label == "cat"


def test_majority_tie_first_equal_times_uses_class_order():
    votes = [Vote(1, "a", "eel"), Vote(1, "b", "dog")]

    assert majority_vote(votes, tie_rule="first")[1].label == "dog"
    assert majority_vote(votes, tie_rule="first", classes=["eel", "dog", "cat"])[1].label == "eel"


def test_majority_tie_random_is_seeded():
    votes = [vote for row_id in range(40) for vote in tied_votes(row_id)]

    first = majority_vote(votes, tie_rule="random", seed=11)
    again = majority_vote(list(reversed(votes)), tie_rule="random", seed=11)
    other_seed = majority_vote(votes, tie_rule="random", seed=12)

    labels = [first[row_id].label for row_id in range(40)]
    assert labels == [again[row_id].label for row_id in range(40)]
    assert set(labels) == {"cat", "dog"}
    assert labels != [other_seed[row_id].label for row_id in range(40)]
    assert all(first[row_id].tied for row_id in range(40))


def test_majority_tie_random_depends_on_row_not_position():
    # Row 5's draw must not change when other rows are added or removed.
    alone = majority_vote(tied_votes(5), tie_rule="random", seed=3)
    with_others = majority_vote(
        tied_votes(5) + tied_votes(6) + tied_votes(4), tie_rule="random", seed=3
    )

    assert alone[5].label == with_others[5].label


def test_majority_negative_row_id_random_tie():
    result = majority_vote(tied_votes(-8), tie_rule="random", seed=0)

    assert result[-8].label in {"cat", "dog"}


def test_majority_rows_sorted_by_row_id():
    votes = [Vote(9, "a", "cat"), Vote(2, "a", "dog"), Vote(5, "a", "eel")]

    assert list(majority_vote(votes)) == [2, 5, 9]


def test_majority_unknown_tie_rule():
    with pytest.raises(ConfigError, match=r"tie_rule must be one of \['defer', 'first', 'random'\], got 'coin'"):
        majority_vote(tied_votes(), tie_rule="coin")


def test_majority_label_outside_classes():
    votes = [Vote(4, "alice", "cow")]

    with pytest.raises(DataError, match=r"label 'cow' of annotator 'alice' on row_id 4 is not a class"):
        majority_vote(votes, classes=CLASSES)


def test_majority_duplicate_vote_rejected():
    votes = [Vote(4, "alice", "cat"), Vote(4, "alice", "dog")]

    with pytest.raises(DataError, match=r"annotator 'alice' voted twice on row_id 4"):
        majority_vote(votes)


def test_majority_rejects_non_votes():
    with pytest.raises(DataError, match=r"votes must be Vote objects"):
        majority_vote([(1, "alice", "cat")])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"row_id": True}, r"row_id must be an integer, got the bool True"),
        ({"row_id": 1.5}, r"row_id must be an integer, got 1.5"),
        ({"annotator": ""}, r"annotator for row_id 1 must be a non-empty string"),
        ({"label": 3}, r"label for row_id 1 must be a non-empty string"),
        ({"answered_at": float("nan")}, r"answered_at for row_id 1 must be finite"),
    ],
)
def test_vote_rejects_bad_fields(fields, message):
    values = {"row_id": 1, "annotator": "alice", "label": "cat", "answered_at": 0.0, **fields}

    with pytest.raises(DataError, match=message):
        Vote(**values)


vote_tables = st.dictionaries(
    keys=st.tuples(st.integers(-3, 6), st.sampled_from(["a", "b", "c", "d"])),
    values=st.tuples(st.sampled_from(CLASSES), st.integers(0, 3).map(float)),
    max_size=30,
)


def as_votes(table: dict) -> list[Vote]:
    return [
        Vote(row_id, annotator, label, answered_at)
        for (row_id, annotator), (label, answered_at) in table.items()
    ]


@settings(max_examples=60, deadline=None)
@given(table=vote_tables, rule=st.sampled_from(["defer", "first", "random"]), data=st.data())
def test_majority_independent_of_vote_order(table, rule, data):
    votes = as_votes(table)
    shuffled = data.draw(st.permutations(votes))

    assert majority_vote(votes, tie_rule=rule, seed=5) == majority_vote(shuffled, tie_rule=rule, seed=5)


@settings(max_examples=60, deadline=None)
@given(table=vote_tables, rule=st.sampled_from(["defer", "first", "random"]))
def test_majority_label_among_top_votes(table, rule):
    votes = as_votes(table)
    result = majority_vote(votes, tie_rule=rule, seed=1)

    for row_id, outcome in result.items():
        row_labels = [vote.label for vote in votes if vote.row_id == row_id]
        top = max(row_labels.count(label) for label in row_labels)
        assert outcome.n_votes == len(row_labels)
        assert outcome.confidence == top / len(row_labels)
        if outcome.label is None:
            assert rule == "defer"
            assert outcome.tied
        else:
            assert outcome.label in row_labels
            assert row_labels.count(outcome.label) == top
