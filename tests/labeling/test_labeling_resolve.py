"""Resolving: k answers aggregated into one consensus answer per row, ties, and imported answers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from al_ray.labeling.aggregation import Vote, majority_vote
from al_ray.labeling.errors import (
    AnswerConflictError,
    InvalidLabelError,
    UnknownTaskError,
)
from al_ray.labeling.schema import queue_items_table
from al_ray.labels import Answer


def answer_item(queue, annotator: str, label: str, expected_row: int) -> None:
    leased = queue.next_task(annotator)
    assert leased is not None and leased.row_id == expected_row
    assert queue.submit(annotator, leased.item_id, label, f"{annotator}-{leased.item_id}").stored


def item_state(store, row_id: int) -> tuple:
    with store.read_transaction("read test item") as connection:
        return connection.execute(
            sa.select(
                queue_items_table.c.status,
                queue_items_table.c.required_answers,
                queue_items_table.c.consensus_label,
                queue_items_table.c.confidence,
            ).where(queue_items_table.c.row_id == row_id, queue_items_table.c.kind == "task")
        ).one()


def add_annotators(queue, *names: str) -> None:
    for name in names:
        queue.add_annotator(name)


def test_single_answer_resolves_once(make_queue, post, store) -> None:
    queue = make_queue()
    add_annotators(queue, "ann")
    queue.enqueue(post(0, [10, 11]))
    assert queue.resolve() == []

    answer_item(queue, "ann", "dog", 10)
    expected = Answer(10, "dog", "consensus:majority", 1000.0)
    assert queue.resolve() == [expected]
    assert queue.resolve() == []
    assert queue.resolved_answers([11, 10]) == [expected]
    assert [item["row_id"] for item in queue.pending_items()] == [11]
    assert item_state(store, 10) == ("resolved", 1, "dog", 1.0)


def test_majority_of_three(make_queue, post, store, clock) -> None:
    queue = make_queue(answers_per_task=3)
    add_annotators(queue, "ann", "bob", "cy")
    queue.enqueue(post(0, [10]))
    answer_item(queue, "ann", "dog", 10)
    clock.advance(5)
    answer_item(queue, "bob", "cat", 10)
    assert queue.resolve() == []
    clock.advance(5)
    answer_item(queue, "cy", "dog", 10)

    # answered_at of the consensus is that of the last vote.
    assert queue.resolve() == [Answer(10, "dog", "consensus:majority", 1010.0)]
    status, required, label, confidence = item_state(store, 10)
    assert (status, required, label) == ("resolved", 3, "dog")
    assert confidence == pytest.approx(2 / 3)


def test_tie_defers_to_one_more_annotator(make_queue, post, store) -> None:
    queue = make_queue(answers_per_task=2, tie_rule="defer")
    add_annotators(queue, "ann", "bob", "cy")
    queue.enqueue(post(0, [10]))
    answer_item(queue, "ann", "dog", 10)
    answer_item(queue, "bob", "cat", 10)

    assert queue.resolve() == []
    assert item_state(store, 10)[:2] == ("open", 3)
    answer_item(queue, "cy", "cat", 10)
    assert queue.resolve() == [Answer(10, "cat", "consensus:majority", 1000.0)]


def test_tie_at_limit_drawn_with_seed(make_queue, post, store) -> None:
    queue = make_queue(answers_per_task=2, max_answers_per_task=2, seed=11)
    add_annotators(queue, "ann", "bob")
    queue.enqueue(post(0, [10]))
    answer_item(queue, "ann", "dog", 10)
    answer_item(queue, "bob", "cat", 10)

    drawn = majority_vote(
        [Vote(10, "ann", "dog", 1000.0), Vote(10, "bob", "cat", 1000.0)],
        tie_rule="random",
        seed=11,
        classes=("cat", "dog", "fox"),
    )[10].label
    assert queue.resolve() == [Answer(10, drawn, "consensus:majority", 1000.0)]
    assert item_state(store, 10)[:2] == ("resolved", 2)


def test_tie_rule_first(make_queue, post, clock) -> None:
    queue = make_queue(answers_per_task=2, tie_rule="first")
    add_annotators(queue, "ann", "bob")
    queue.enqueue(post(0, [10]))
    answer_item(queue, "ann", "fox", 10)
    clock.advance(3)
    answer_item(queue, "bob", "cat", 10)
    assert queue.resolve() == [Answer(10, "fox", "consensus:majority", 1003.0)]


def test_dawid_skene_named_in_answer(make_queue, post) -> None:
    queue = make_queue(answers_per_task=2, aggregation="dawid_skene")
    add_annotators(queue, "ann", "bob")
    queue.enqueue(post(0, [10, 11]))
    for row_id, label in ((10, "cat"), (11, "dog")):
        answer_item(queue, "ann", label, row_id)
        answer_item(queue, "bob", label, row_id)
    assert queue.resolve() == [
        Answer(10, "cat", "consensus:dawid_skene", 1000.0),
        Answer(11, "dog", "consensus:dawid_skene", 1000.0),
    ]


def test_import_votes(make_queue, post) -> None:
    queue = make_queue(answers_per_task=2)
    add_annotators(queue, "ann")
    queue.enqueue(post(0, [10, 11]))
    votes = [Vote(10, "ls:1", "dog", 50.0), Vote(10, "ls:2", "dog", 60.0), Vote(11, "ls:1", "cat", 70.0)]
    assert queue.import_votes(votes) == 3
    assert queue.import_votes(votes) == 0

    # Row 10 has its two answers, so nobody is leased it; row 11 needs one more.
    assert queue.next_task("ann").row_id == 11
    assert queue.resolve() == [Answer(10, "dog", "consensus:majority", 60.0)]


def test_import_rejects_whole_batch(make_queue, post) -> None:
    queue = make_queue(answers_per_task=2)
    queue.enqueue(post(0, [10, 11]))
    queue.import_votes([Vote(10, "ls:1", "dog", 50.0)])

    with pytest.raises(AnswerConflictError, match=r"row_id 10 by 'ls:1': 'dog' then 'cat'"):
        queue.import_votes([Vote(11, "ls:2", "fox", 1.0), Vote(10, "ls:1", "cat", 1.0)])
    with pytest.raises(AnswerConflictError, match=r"row_id 11 by 'ls:2': 'fox' then 'cat'"):
        queue.import_votes([Vote(11, "ls:2", "fox", 1.0), Vote(11, "ls:2", "cat", 1.0)])
    with pytest.raises(UnknownTaskError, match="No task was enqueued for row_ids 98, 99"):
        queue.import_votes([Vote(11, "ls:2", "fox", 1.0), Vote(99, "ls:2", "fox", 1.0), Vote(98, "ls:2", "cat", 1.0)])
    with pytest.raises(InvalidLabelError, match="Label 'wolf' of annotator 'ls:2' on row_id 11 is not a class"):
        queue.import_votes([Vote(11, "ls:2", "wolf", 1.0)])
    with pytest.raises(InvalidLabelError, match="import_votes takes Vote objects"):
        queue.import_votes([(11, "ls:2", "fox")])
    assert [item["answers"] for item in queue.pending_items()] == [1, 0]
