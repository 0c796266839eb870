"""Audit entries of people's answers: read back from the queue's tables, then appended to the run's audit log.

The reads run inside the caller's transaction, the appends after it commits.
An entry's key is its item and annotator, so appending an answer that is
already logged writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from al_ray.labeling._leasing import TASK
from al_ray.labeling.schema import annotations_table, queue_items_table
from al_ray.labels._tasks import chunks

if TYPE_CHECKING:
    from al_ray.monitoring.audit import AuditLog

__all__ = ["append_answers", "imported_answers", "stored_answer"]

_items = queue_items_table
_annotations = annotations_table


def _answers_query() -> sa.Select:
    return sa.select(
        _annotations.c.item_id,
        _annotations.c.row_id,
        _annotations.c.annotator_id,
        _annotations.c.label,
        _annotations.c.answered_at,
        _items.c.kind,
        _items.c.round_index,
    ).join(_items, _items.c.item_id == _annotations.c.item_id)


def stored_answer(connection: sa.Connection, item_id: int, annotator_id: str) -> dict[str, Any] | None:
    """Return the annotator's stored answer to the item, with the item's kind and round, or None."""
    row = connection.execute(
        _answers_query().where(_annotations.c.item_id == item_id, _annotations.c.annotator_id == annotator_id)
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


def imported_answers(connection: sa.Connection, keys: Iterable[tuple[int, str]]) -> list[dict[str, Any]]:
    """Return the stored answers to task items of these ``(row_id, annotator_id)`` pairs, by row and annotator."""
    requested = set(keys)
    found = []
    for chunk in chunks(sorted({row_id for row_id, _ in requested})):
        rows = connection.execute(
            _answers_query().where(_items.c.kind == TASK, _annotations.c.row_id.in_(chunk))
        )
        found.extend(dict(row._mapping) for row in rows if (row.row_id, row.annotator_id) in requested)
    return sorted(found, key=lambda answer: (answer["row_id"], answer["annotator_id"]))


def append_answers(audit: AuditLog, answers: Sequence[dict[str, Any]]) -> int:
    """Append one ``label`` entry per answer not logged yet, and return how many were appended.

    Raises
    ------
    AuditError
        If the log cannot be written; nothing of this batch is appended then.
    """
    from al_ray.monitoring.audit_records import annotation_record

    records = [
        annotation_record(
            item_id=answer["item_id"],
            row_id=answer["row_id"],
            annotator=answer["annotator_id"],
            label=answer["label"],
            answered_at=answer["answered_at"],
            item_kind=answer["kind"],
            round_index=answer["round_index"],
        )
        for answer in answers
    ]
    return len(audit.append_many(records))
