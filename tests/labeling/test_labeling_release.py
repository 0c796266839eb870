"""Queue: reserved annotator ids, releasing a lease without a skip, and deactivation freeing held tasks."""

from __future__ import annotations

import pytest

from al_ray.labeling.aggregation import Vote
from al_ray.labeling.errors import (
    InvalidLabelError,
    TaskNotYoursError,
    UnknownTaskError,
)
from al_ray.labeling.queue import Progress


@pytest.mark.parametrize(
    "annotator_id", ["consensus:majority", "consensus:dawid_skene", "labelstudio:9", "oracle", "ORACLE"]
)
def test_reserved_ids_rejected(make_queue, annotator_id: str) -> None:
    queue = make_queue()

    with pytest.raises(InvalidLabelError, match=f"Annotator id '{annotator_id}' is reserved") as raised:
        queue.add_annotator(annotator_id)

    assert raised.value.status_code == 422
    assert queue.annotators() == []


@pytest.mark.parametrize("annotator_id", ["consensus", "oracle2", "team:alice", "alice.labelstudio:9"])
def test_ids_near_reserved_accepted(make_queue, annotator_id: str) -> None:
    queue = make_queue()

    queue.add_annotator(annotator_id)

    assert [row["annotator_id"] for row in queue.annotators()] == [annotator_id]


def test_imported_ids_still_accepted(make_queue, post) -> None:
    # Label Studio answers keep their reserved prefix: only people added by hand may not use it.
    queue = make_queue()
    queue.enqueue(post(0, [10]))

    assert queue.import_votes([Vote(10, "labelstudio:9", "cat")]) == 1


def test_release_returns_item_to_queue(make_queue, post) -> None:
    queue = make_queue(lease_timeout_s=60)
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [10, 20]))
    held = queue.next_task("ann")

    assert queue.release("ann", held.item_id) is True

    # Bob gets the released item at once, as the best-ranked one.
    assert queue.next_task("bob").row_id == 10
    # Ann is offered the item she never saw first, and her release is no skip.
    assert queue.next_task("ann").row_id == 20
    assert queue.progress("ann") == Progress(answered=0, skipped=0, remaining=1)


def test_released_item_comes_back(make_queue, post) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    queue.enqueue(post(0, [10]))
    held = queue.next_task("ann")

    queue.release("ann", held.item_id)

    assert queue.next_task("ann").item_id == held.item_id


def test_release_without_active_lease(make_queue, post) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [10, 20]))
    answered = queue.next_task("ann")
    queue.submit("ann", answered.item_id, "cat", "s-1")
    skipped = queue.next_task("ann")
    queue.skip("ann", skipped.item_id)

    assert queue.release("ann", answered.item_id) is False
    assert queue.release("ann", skipped.item_id) is False
    assert queue.progress("ann") == Progress(answered=1, skipped=1, remaining=0)
    with pytest.raises(TaskNotYoursError, match="not leased to you"):
        queue.release("bob", answered.item_id)
    with pytest.raises(UnknownTaskError, match="GET /api/next"):
        queue.release("ann", 999)


def test_deactivation_frees_held_item(make_queue, post) -> None:
    queue = make_queue(lease_timeout_s=3600)
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(0, [10]))
    held = queue.next_task("ann")
    assert queue.next_task("bob") is None

    queue.set_active("ann", False)

    assert queue.next_task("bob").item_id == held.item_id
    assert queue.counts().leased_tasks == 1


def test_quality_statuses(make_queue, post) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.set_active("bob", False)
    queue.enqueue(post(0, [10]))
    queue.import_votes([Vote(10, "labelstudio:9", "cat")])

    annotators = queue.quality()["annotators"]

    assert [(row["annotator_id"], row["role"], row["status"]) for row in annotators] == [
        ("ann", "annotator", "active"),
        ("bob", "annotator", "deactivated"),
        ("labelstudio:9", None, "imported"),
    ]
