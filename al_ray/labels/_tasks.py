"""Writing tasks, inside the caller's write transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from al_ray.errors import LabelStoreError
from al_ray.labels._checks import already_queried_message
from al_ray.labels._schema import tasks_table
from al_ray.labels.types import PENDING

__all__ = ["chunks", "insert_tasks", "posted_rounds"]

# Row ids per IN (...) clause. SQLite before 3.32 allows 999 bound parameters.
_IN_CHUNK = 500


def chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    """Yield consecutive slices of ``values`` small enough for one IN clause."""
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def posted_rounds(connection: sa.Connection, row_ids: Sequence[int]) -> dict[int, int]:
    """Return the round of every row in ``row_ids`` that already has a task."""
    rounds: dict[int, int] = {}
    for chunk in chunks(row_ids):
        statement = sa.select(tasks_table.c.row_id, tasks_table.c.round_index).where(
            tasks_table.c.row_id.in_(chunk)
        )
        for row_id, round_index in connection.execute(statement):
            rounds[row_id] = round_index
    return rounds


def insert_tasks(
    connection: sa.Connection,
    round_index: int,
    row_ids: Sequence[int],
    utilities: Sequence[float | None],
    model_version: str | None,
    now: float,
) -> int:
    """Insert a task for each row not yet posted in ``round_index`` and return how many.

    New tasks get positions after the round's existing ones, in the order of
    ``row_ids``.

    Raises
    ------
    LabelStoreError
        If a row already has a task from another round.
    """
    existing = posted_rounds(connection, row_ids)
    elsewhere = [
        (row_id, existing[row_id])
        for row_id in row_ids
        if existing.get(row_id, round_index) != round_index
    ]
    if elsewhere:
        raise LabelStoreError(already_queried_message(round_index, elsewhere))

    new_indices = [i for i, row_id in enumerate(row_ids) if row_id not in existing]
    if not new_indices:
        return 0

    last_position = connection.execute(
        sa.select(sa.func.max(tasks_table.c.position)).where(
            tasks_table.c.round_index == round_index
        )
    ).scalar_one_or_none()
    first_position = 0 if last_position is None else last_position + 1
    rows = [
        {
            "row_id": row_ids[i],
            "round_index": round_index,
            "position": first_position + rank,
            "utility": utilities[i],
            "model_version": model_version,
            "status": PENDING,
            "posted_at": now,
        }
        for rank, i in enumerate(new_indices)
    ]
    connection.execute(sa.insert(tasks_table), rows)
    return len(rows)
