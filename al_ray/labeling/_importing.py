"""Answers made in another labeling tool, stored as annotations of the rows' task items.

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from al_ray.labeling._checks import check_annotator_id
from al_ray.labeling._leasing import TASK
from al_ray.labeling.aggregation import Vote
from al_ray.labeling.errors import (
    AnswerConflictError,
    InvalidLabelError,
    UnknownTaskError,
)
from al_ray.labeling.schema import annotations_table, queue_items_table
from al_ray.labels._checks import format_row_ids
from al_ray.labels._tasks import chunks

__all__ = ["check_votes", "insert_votes"]

# Conflicts quoted in one error message before the rest are only counted.
_CONFLICTS_IN_MESSAGE = 5

_items = queue_items_table
_annotations = annotations_table


def check_votes(votes: Sequence[object], classes: tuple[str, ...]) -> list[Vote]:
    """Return ``votes``, raising :class:`InvalidLabelError` on a non-vote, a bad annotator id or label."""
    checked: list[Vote] = []
    for vote in votes:
        if not isinstance(vote, Vote):
            raise InvalidLabelError(
                f"import_votes takes Vote objects, got {vote!r} of type {type(vote).__name__}."
            )
        if vote.label not in classes:
            raise InvalidLabelError(
                f"Label {vote.label!r} of annotator {vote.annotator!r} on row_id {vote.row_id} is "
                f"not a class; classes are {list(classes)[:20]}. Nothing was imported."
            )
        check_annotator_id(vote.annotator)
        checked.append(vote)
    return checked


def insert_votes(connection: sa.Connection, votes: Sequence[Vote], now: float) -> int:
    """Insert the votes not yet stored and return how many; all or nothing.

    Raises
    ------
    UnknownTaskError
        If a vote names a row that has no task item.
    AnswerConflictError
        If an annotator has a different answer for the row, stored or in ``votes``.
    """
    row_ids = sorted({vote.row_id for vote in votes})
    item_of: dict[int, int] = {}
    known: dict[tuple[int, str], str] = {}
    for chunk in chunks(row_ids):
        items = connection.execute(
            sa.select(_items.c.row_id, _items.c.item_id).where(
                _items.c.kind == TASK, _items.c.row_id.in_(chunk)
            )
        )
        for row_id, item_id in items:
            item_of[row_id] = item_id
        stored = connection.execute(
            sa.select(_annotations.c.row_id, _annotations.c.annotator_id, _annotations.c.label)
            .join(_items, _items.c.item_id == _annotations.c.item_id)
            .where(_items.c.kind == TASK, _annotations.c.row_id.in_(chunk))
        )
        for row_id, annotator_id, label in stored:
            known[(row_id, annotator_id)] = label

    unknown = [row_id for row_id in row_ids if row_id not in item_of]
    if unknown:
        raise UnknownTaskError(
            f"No task was enqueued for {format_row_ids(unknown)}, so no answer from this "
            "import was stored. Import only answers to tasks exported from this run."
        )

    conflicts: list[str] = []
    new_rows: list[dict[str, Any]] = []
    for vote in votes:
        key = (vote.row_id, vote.annotator)
        if key in known:
            if known[key] != vote.label:
                conflicts.append(
                    f"row_id {vote.row_id} by {vote.annotator!r}: {known[key]!r} then {vote.label!r}"
                )
            continue
        known[key] = vote.label
        item_id = item_of[vote.row_id]
        new_rows.append(
            {
                "item_id": item_id,
                "row_id": vote.row_id,
                "annotator_id": vote.annotator,
                "label": vote.label,
                # One answer per annotator and item, so the item id is unique per annotator.
                "submission_id": f"import:{item_id}",
                "answered_at": vote.answered_at if vote.answered_at > 0 else now,
            }
        )
    if conflicts:
        raise AnswerConflictError(
            f"{len(conflicts)} imported answers differ from another answer by the same annotator "
            f"to the same row ({'; '.join(conflicts[:_CONFLICTS_IN_MESSAGE])}), so nothing was "
            "imported. An answer cannot be changed; remove these from the import file."
        )
    if new_rows:
        connection.execute(sa.insert(_annotations), new_rows)
    return len(new_rows)
