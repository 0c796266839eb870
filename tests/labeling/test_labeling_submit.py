"""Answers: replayed submissions stored once, no answer overwritten, invalid input rejected."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from al_ray.labeling.errors import AnswerConflictError, InvalidLabelError
from al_ray.labeling.queue import SubmitResult
from al_ray.labeling.schema import annotations_table


def stored_answers(store) -> list[tuple[int, str, str, str]]:
    with store.read_transaction("read test answers") as connection:
        rows = connection.execute(
            sa.select(
                annotations_table.c.item_id,
                annotations_table.c.annotator_id,
                annotations_table.c.label,
                annotations_table.c.submission_id,
            ).order_by(annotations_table.c.annotation_id)
        ).all()
    return [tuple(row) for row in rows]


@pytest.fixture
def queue(make_queue, post):
    queue = make_queue(answers_per_task=2)
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [10, 11]))
    return queue


def test_replay_stored_once(queue, store) -> None:
    item = queue.next_task("ann")
    first = queue.submit("ann", item.item_id, "dog", "sub-1")
    again = queue.submit("ann", item.item_id, "dog", "sub-1")
    assert first == SubmitResult(item_id=1, label="dog", stored=True)
    assert again == SubmitResult(item_id=1, label="dog", stored=False)
    assert stored_answers(store) == [(1, "ann", "dog", "sub-1")]


def test_same_answer_new_submission_not_stored(queue, store) -> None:
    queue.next_task("ann")
    queue.submit("ann", 1, "dog", "sub-1")
    assert queue.submit("ann", 1, "dog", "sub-2") == SubmitResult(1, "dog", stored=False)
    assert stored_answers(store) == [(1, "ann", "dog", "sub-1")]


def test_different_answer_rejected(queue, store) -> None:
    queue.next_task("ann")
    queue.submit("ann", 1, "dog", "sub-1")
    with pytest.raises(
        AnswerConflictError,
        match=r"You already answered item 1 with label 'dog'\. An answer cannot be changed, so 'cat'",
    ) as raised:
        queue.submit("ann", 1, "cat", "sub-2")
    assert raised.value.status_code == 409
    assert stored_answers(store) == [(1, "ann", "dog", "sub-1")]


def test_submission_id_reused_for_other_answer(queue, store) -> None:
    queue.next_task("ann")
    queue.submit("ann", 1, "dog", "sub-1")
    queue.next_task("ann")
    with pytest.raises(AnswerConflictError, match="submission_id 'sub-1' was already used for item 1"):
        queue.submit("ann", 2, "cat", "sub-1")
    with pytest.raises(AnswerConflictError, match="submission_id 'sub-1' was already used"):
        queue.submit("ann", 1, "cat", "sub-1")
    assert stored_answers(store) == [(1, "ann", "dog", "sub-1")]


def test_same_submission_id_two_annotators(queue, store) -> None:
    queue.next_task("ann")
    queue.next_task("bob")
    assert queue.submit("ann", 1, "dog", "same").stored
    assert queue.submit("bob", 1, "cat", "same").stored
    assert stored_answers(store) == [(1, "ann", "dog", "same"), (1, "bob", "cat", "same")]


@pytest.mark.parametrize(
    ("label", "submission_id", "item_id", "message"),
    [
        ("wolf", "s", 1, r"Label 'wolf' is not a class; classes are \['cat', 'dog', 'fox'\]"),
        ("", "s", 1, "Label '' is not a class"),
        (3, "s", 1, "Label 3 is not a class"),
        ("cat", "", 1, "submission_id must be 1 to 128 printable characters, got ''"),
        ("cat", "x" * 129, 1, "submission_id must be 1 to 128 printable characters"),
        ("cat", "a\nb", 1, "submission_id must be 1 to 128 printable characters"),
        ("cat", None, 1, "submission_id must be 1 to 128 printable characters, got None"),
        ("cat", "s", "1", "item_id must be an integer, got '1'"),
        ("cat", "s", True, "item_id must be an integer, got True"),
    ],
)
def test_invalid_submission(queue, store, label, submission_id, item_id, message) -> None:
    queue.next_task("ann")
    with pytest.raises(InvalidLabelError, match=message) as raised:
        queue.submit("ann", item_id, label, submission_id)
    assert raised.value.status_code == 422
    assert raised.value.to_json()["error"] == "invalid_label"
    assert stored_answers(store) == []


def test_my_answers_only_own(queue) -> None:
    queue.next_task("ann")
    queue.next_task("bob")
    queue.submit("ann", 1, "dog", "a")
    queue.submit("bob", 1, "fox", "b")
    mine = queue.my_answers("ann")
    assert mine == [
        {"item_id": 1, "row_id": 10, "label": "dog", "submission_id": "a", "answered_at": 1000.0}
    ]
