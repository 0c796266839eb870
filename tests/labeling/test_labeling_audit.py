"""The queue's audit entries: one per stored answer, none for a replay, and a failed append filled by a replay."""

from __future__ import annotations

import pytest

from al_ray.errors import AuditError
from al_ray.labeling.aggregation import Vote
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.errors import AnswerConflictError, TaskNotYoursError
from al_ray.labeling.queue import LabelQueue
from al_ray.monitoring.audit import AuditLog

CLASSES = ("cat", "dog", "fox")


@pytest.fixture
def audit_log(tmp_path):
    with AuditLog(tmp_path / "audit.db") as log:
        yield log


def _queue(store, clock, audit) -> LabelQueue:
    return LabelQueue(store, CLASSES, LabelingConfig(), seed=7, clock=clock, audit=audit)


def test_submit_appends_one_entry(store, clock, post, audit_log) -> None:
    queue = _queue(store, clock, audit_log)
    queue.add_annotator("ann")
    queue.enqueue(post(2, [10, 11]))
    item = queue.next_task("ann")

    assert queue.submit("ann", item.item_id, "dog", "sub-1").stored is True
    assert queue.submit("ann", item.item_id, "dog", "sub-1").stored is False
    assert queue.submit("ann", item.item_id, "dog", "sub-2").stored is False

    entries = audit_log.entries(kind="label")
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.actor, entry.subject, entry.key) == ("ann", "10", f"annotation:{item.item_id}:ann")
    assert entry.data == {
        "row_id": 10,
        "label": "dog",
        "annotator": "ann",
        "answered_at": "1970-01-01T00:16:40.000000+00:00",  # the fake clock's 1000 s
        "item_id": item.item_id,
        "item_kind": "task",
        "round": 2,
        "source": "labeling-service",
    }
    assert audit_log.verify() == []


def test_rejected_answer_not_logged(store, clock, post, audit_log) -> None:
    queue = _queue(store, clock, audit_log)
    queue.add_annotator("ann")
    queue.add_annotator("bob")
    queue.enqueue(post(1, [10]))
    item = queue.next_task("ann")
    queue.submit("ann", item.item_id, "dog", "sub-1")

    with pytest.raises(AnswerConflictError, match="already answered item"):
        queue.submit("ann", item.item_id, "cat", "sub-2")
    with pytest.raises(TaskNotYoursError, match="not leased to you"):
        queue.submit("bob", item.item_id, "cat", "sub-3")

    assert [entry.data["label"] for entry in audit_log.entries()] == ["dog"]


def test_failed_append_filled_by_replay(store, clock, post, tmp_path) -> None:
    closed = AuditLog(tmp_path / "audit.db")
    closed.close()
    broken = _queue(store, clock, closed)
    broken.add_annotator("ann")
    broken.enqueue(post(1, [10]))
    item = broken.next_task("ann")

    with pytest.raises(AuditError, match="is closed"):
        broken.submit("ann", item.item_id, "fox", "sub-1")
    assert [answer["label"] for answer in broken.my_answers("ann")] == ["fox"]

    with AuditLog(tmp_path / "audit.db") as log:
        queue = _queue(store, clock, log)
        assert log.entries() == []
        assert queue.submit("ann", item.item_id, "fox", "sub-1").stored is False
        assert queue.submit("ann", item.item_id, "fox", "sub-1").stored is False
        assert [(entry.actor, entry.data["label"]) for entry in log.entries()] == [("ann", "fox")]
        assert log.verify() == []


def test_import_appends_entries_once(store, clock, post, audit_log) -> None:
    queue = _queue(store, clock, audit_log)
    queue.enqueue(post(1, [10, 11]))
    votes = [
        Vote(row_id=11, annotator="labelstudio:7", label="cat", answered_at=1_500.0),
        Vote(row_id=10, annotator="labelstudio:7", label="dog", answered_at=1_600.0),
    ]

    assert queue.import_votes(votes) == 2
    assert queue.import_votes(votes) == 0

    entries = audit_log.entries(kind="label")
    assert [(entry.subject, entry.actor, entry.data["label"]) for entry in entries] == [
        ("10", "labelstudio:7", "dog"),
        ("11", "labelstudio:7", "cat"),
    ]
    assert entries[0].data["answered_at"] == "1970-01-01T00:26:40.000000+00:00"
    assert audit_log.verify() == []


def test_no_audit_log_writes_nothing(store, clock, post, tmp_path) -> None:
    queue = _queue(store, clock, None)
    queue.add_annotator("ann")
    queue.enqueue(post(1, [10]))
    item = queue.next_task("ann")

    assert queue.submit("ann", item.item_id, "dog", "sub-1").stored is True
    assert not (tmp_path / "audit.db").exists()
