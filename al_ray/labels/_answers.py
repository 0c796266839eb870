"""Writing answers, inside the caller's write transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from al_ray.errors import LabelStoreError
from al_ray.labels._checks import format_row_ids
from al_ray.labels._schema import answers_table, tasks_table
from al_ray.labels._tasks import chunks, posted_rounds
from al_ray.labels.types import ANSWERED, PENDING, Answer

__all__ = ["StoredAnswers", "store_answers"]


@dataclass
class StoredAnswers:
    """Outcome of :func:`store_answers`."""

    stored: int = 0
    """Answers inserted."""

    duplicates: int = 0
    """Answers skipped because the same ``(row_id, annotator, label)`` was stored."""

    answered_row_ids: set[int] = field(default_factory=set)
    """Rows that received a new answer."""

    labels_by_row: dict[int, set[str]] = field(default_factory=dict)
    """Every distinct label stored for each row the batch names, after the batch."""

    def conflicts(self) -> list[int]:
        """Return, ascending, the rows that received a new answer and hold two or more labels."""
        return sorted(
            row_id for row_id in self.answered_row_ids if len(self.labels_by_row[row_id]) > 1
        )


def store_answers(connection: sa.Connection, batch: Sequence[Answer], now: float) -> StoredAnswers:
    """Insert the answers of ``batch`` not yet stored and mark their tasks answered.

    Raises
    ------
    LabelStoreError
        If an answer names a row that has no task. The caller's transaction
        then rolls back, so nothing from the batch is stored.
    """
    row_ids = sorted({answer.row_id for answer in batch})
    posted = posted_rounds(connection, row_ids)
    missing = [row_id for row_id in row_ids if row_id not in posted]
    if missing:
        raise LabelStoreError(
            f"No task was posted for {format_row_ids(missing)}, so no answer from this call "
            "was stored. Post the rows with post_tasks() before storing their answers."
        )

    outcome = StoredAnswers()
    stored_keys: set[tuple[int, str, str]] = set()
    for chunk in chunks(row_ids):
        existing = connection.execute(
            sa.select(answers_table.c.row_id, answers_table.c.annotator, answers_table.c.label)
            .where(answers_table.c.row_id.in_(chunk))
        ).all()
        for row_id, annotator, label in existing:
            stored_keys.add((row_id, annotator, label))
            outcome.labels_by_row.setdefault(row_id, set()).add(label)

    new_rows: list[dict[str, Any]] = []
    for answer in batch:
        key = (answer.row_id, answer.annotator, answer.label)
        if key in stored_keys:
            outcome.duplicates += 1
            continue
        stored_keys.add(key)
        outcome.labels_by_row.setdefault(answer.row_id, set()).add(answer.label)
        outcome.answered_row_ids.add(answer.row_id)
        new_rows.append(
            {
                "row_id": answer.row_id,
                "label": answer.label,
                "annotator": answer.annotator,
                "answered_at": answer.answered_at,
                "stored_at": now,
            }
        )
    outcome.stored = len(new_rows)
    if not new_rows:
        return outcome

    connection.execute(sa.insert(answers_table), new_rows)
    for chunk in chunks(sorted(outcome.answered_row_ids)):
        connection.execute(
            sa.update(tasks_table)
            .where(tasks_table.c.row_id.in_(chunk))
            .where(tasks_table.c.status == PENDING)
            .values(status=ANSWERED)
        )
    return outcome
