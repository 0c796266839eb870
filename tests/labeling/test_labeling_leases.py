"""Leasing: best-first order, k answers per task, expiry with a fake clock, skip and progress."""

from __future__ import annotations

import pytest

from al_ray.labeling.errors import (
    AnswerConflictError,
    AuthenticationError,
    LeaseExpiredError,
    TaskNotYoursError,
    UnknownTaskError,
)
from al_ray.labeling.queue import LeasedTask, Progress


def test_enqueue_is_idempotent(make_queue, post, store) -> None:
    queue = make_queue()
    tasks = post(0, [30, 10, 20])
    assert queue.enqueue(tasks) == 3
    assert queue.enqueue(tasks) == 0
    assert queue.enqueue(store.tasks()) == 0
    assert [item["row_id"] for item in queue.pending_items()] == [30, 10, 20]


def test_next_task_best_first_and_held(make_queue, post, clock) -> None:
    queue = make_queue(lease_timeout_s=60)
    queue.add_annotator("ann")
    queue.enqueue(post(0, [30, 10]))
    queue.enqueue(post(1, [5]))

    first = queue.next_task("ann")
    assert first == LeasedTask(item_id=1, row_id=30, round_index=0, kind="task", expires_at=1060.0)
    clock.advance(10)
    # The held lease comes back unchanged until it is answered.
    assert queue.next_task("ann") == first

    queue.submit("ann", first.item_id, "cat", "s-1")
    second = queue.next_task("ann")
    assert (second.row_id, second.expires_at) == (10, 1070.0)
    queue.submit("ann", second.item_id, "dog", "s-2")
    assert queue.next_task("ann").row_id == 5


def test_single_answer_task_leased_once(make_queue, post) -> None:
    queue = make_queue()
    for name in ("ann", "bob", "cy"):
        queue.add_annotator(name)
    queue.enqueue(post(0, [1, 2]))
    assert queue.next_task("ann").row_id == 1
    assert queue.next_task("bob").row_id == 2
    assert queue.next_task("cy") is None


def test_k_answers_from_different_annotators(make_queue, post) -> None:
    queue = make_queue(answers_per_task=2)
    for name in ("ann", "bob", "cy"):
        queue.add_annotator(name)
    queue.enqueue(post(0, [1, 2]))

    assert queue.next_task("ann").row_id == 1
    assert queue.next_task("bob").row_id == 1
    # Row 1 has its two holders, so the third annotator gets row 2.
    assert queue.next_task("cy").row_id == 2

    queue.submit("ann", 1, "cat", "a-1")
    # ann answered row 1 and never gets it again.
    assert queue.next_task("ann").row_id == 2
    queue.submit("bob", 1, "cat", "b-1")
    assert queue.next_task("bob") is None


def test_expired_lease_returns_item(make_queue, post, clock) -> None:
    queue = make_queue(lease_timeout_s=300)
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [1]))

    assert queue.next_task("ann").row_id == 1
    assert queue.next_task("bob") is None
    clock.advance(299.5)
    assert queue.next_task("bob") is None
    clock.advance(0.5)
    leased = queue.next_task("bob")
    assert (leased.row_id, leased.expires_at) == (1, 1600.0)


def test_expired_item_prefers_others_then_returns(make_queue, post, clock) -> None:
    queue = make_queue(lease_timeout_s=100)
    queue.add_annotator("ann")
    queue.enqueue(post(0, [1, 2]))

    assert queue.next_task("ann").row_id == 1
    clock.advance(100)
    # Row 1 expired: ann first gets the row she never saw, then row 1 again.
    assert queue.next_task("ann").row_id == 2
    queue.submit("ann", 2, "cat", "s-2")
    assert queue.next_task("ann").row_id == 1
    assert queue.submit("ann", 1, "dog", "s-1").stored


def test_late_answer_stored_when_still_needed(make_queue, post, clock) -> None:
    queue = make_queue(lease_timeout_s=100)
    queue.add_annotator("ann")
    queue.enqueue(post(0, [1]))
    queue.next_task("ann")
    clock.advance(500)
    result = queue.submit("ann", 1, "fox", "late")
    assert result.stored
    assert queue.my_answers("ann")[0]["label"] == "fox"


def test_late_answer_rejected_when_taken(make_queue, post, clock) -> None:
    queue = make_queue(lease_timeout_s=100)
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [1]))
    queue.next_task("ann")
    clock.advance(100)
    assert queue.next_task("bob").row_id == 1

    with pytest.raises(LeaseExpiredError, match="Your lease on item 1 ended") as raised:
        queue.submit("ann", 1, "cat", "late")
    assert raised.value.status_code == 409
    assert raised.value.code == "lease_expired"
    assert queue.my_answers("ann") == []
    assert queue.submit("bob", 1, "dog", "b").stored


def test_submit_unleased_or_unknown_item(make_queue, post) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [1]))
    queue.next_task("ann")

    with pytest.raises(TaskNotYoursError, match="Item 1 is not leased to you") as raised:
        queue.submit("bob", 1, "cat", "b")
    assert raised.value.status_code == 403
    with pytest.raises(UnknownTaskError, match="No task has item_id 99") as unknown:
        queue.submit("ann", 99, "cat", "a")
    assert unknown.value.status_code == 404


def test_skip_never_returns_item(make_queue, post) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [1, 2]))

    assert queue.next_task("ann").row_id == 1
    queue.skip("ann", 1)
    queue.skip("ann", 1)
    assert queue.next_task("ann").row_id == 2
    # The skipped row went back to the queue for others.
    assert queue.next_task("bob").row_id == 1
    assert queue.progress("ann") == Progress(answered=0, skipped=1, remaining=1)


def test_skip_errors(make_queue, post) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    queue.enqueue(post(0, [1, 2]))
    queue.next_task("ann")
    queue.submit("ann", 1, "cat", "a")

    with pytest.raises(AnswerConflictError, match="You already answered item 1, so it cannot be skipped"):
        queue.skip("ann", 1)
    with pytest.raises(TaskNotYoursError, match="Item 2 is not leased to you"):
        queue.skip("ann", 2)
    with pytest.raises(UnknownTaskError):
        queue.skip("ann", 7)


def test_progress_counts(make_queue, post) -> None:
    queue = make_queue(answers_per_task=2)
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [1, 2, 3]))
    assert queue.progress("ann") == Progress(answered=0, skipped=0, remaining=3)

    queue.next_task("ann")
    queue.submit("ann", 1, "cat", "a1")
    queue.next_task("ann")
    queue.skip("ann", 2)
    assert queue.progress("ann") == Progress(answered=1, skipped=1, remaining=1)
    # A held lease still counts as remaining work for its holder.
    queue.next_task("bob")
    assert queue.progress("bob") == Progress(answered=0, skipped=0, remaining=3)


def test_unknown_or_deactivated_annotator(make_queue, post) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    queue.enqueue(post(0, [1]))
    with pytest.raises(AuthenticationError, match="Annotator 'zed' does not exist"):
        queue.next_task("zed")
    queue.set_active("ann", False)
    with pytest.raises(AuthenticationError, match="Annotator 'ann' is deactivated"):
        queue.next_task("ann")
    queue.set_active("ann", True)
    assert queue.next_task("ann").row_id == 1
