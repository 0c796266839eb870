"""Adding task items for posted tasks, and gold items from rows already labeled.

Every function runs inside the caller's write transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from al_ray.labeling import _gold
from al_ray.labeling._leasing import GOLD, OPEN, TASK
from al_ray.labeling.schema import queue_items_table
from al_ray.labels import Task
from al_ray.labels._tasks import chunks
from al_ray.seeding import derive_seed

__all__ = ["insert_task_items", "top_up_gold"]

_items = queue_items_table


def insert_task_items(
    connection: sa.Connection, tasks: Sequence[Task], required_answers: int, now: float
) -> int:
    """Insert a task item for each task whose row has none, and return how many.

    New items of a round get positions after the round's existing ones, in the
    order of ``tasks``.
    """
    row_ids = sorted({task.row_id for task in tasks})
    existing: set[int] = set()
    for chunk in chunks(row_ids):
        existing.update(
            connection.execute(
                sa.select(_items.c.row_id).where(_items.c.kind == TASK, _items.c.row_id.in_(chunk))
            ).scalars()
        )

    next_position: dict[int, int] = {}
    rows: list[dict[str, Any]] = []
    for task in tasks:
        if task.row_id in existing:
            continue
        existing.add(task.row_id)
        if task.round_index not in next_position:
            last = connection.execute(
                sa.select(sa.func.max(_items.c.position)).where(
                    _items.c.kind == TASK, _items.c.round_index == task.round_index
                )
            ).scalar_one_or_none()
            next_position[task.round_index] = 0 if last is None else last + 1
        rows.append(
            {
                "row_id": task.row_id,
                "kind": TASK,
                "gold_label": None,
                "required_answers": required_answers,
                "status": OPEN,
                "round_index": task.round_index,
                "position": next_position[task.round_index],
                "created_at": now,
            }
        )
        next_position[task.round_index] += 1
    if rows:
        connection.execute(sa.insert(_items), rows)
    return len(rows)


def top_up_gold(
    connection: sa.Connection,
    labeled: Mapping[int, str],
    gold_rate: float,
    seed: int,
    round_index: int,
    now: float,
) -> int:
    """Add gold items from ``labeled`` rows until there are enough for every task item; return how many.

    Rows already gold and rows with an open task are left out. The draw is
    seeded by ``(seed, round_index)``; with too few labeled rows, fewer are added.
    """
    if gold_rate <= 0:
        return 0
    n_tasks = connection.execute(
        sa.select(sa.func.count()).select_from(_items).where(_items.c.kind == TASK)
    ).scalar_one()
    gold_rows = set(connection.execute(sa.select(_items.c.row_id).where(_items.c.kind == GOLD)).scalars())
    missing = _gold.gold_target(n_tasks, gold_rate) - len(gold_rows)
    if missing <= 0:
        return 0
    open_rows = set(
        connection.execute(
            sa.select(_items.c.row_id).where(_items.c.kind == TASK, _items.c.status == OPEN)
        ).scalars()
    )
    picked = _gold.sample_gold_rows(
        labeled, gold_rows | open_rows, missing, derive_seed(seed, "labeling.gold_rows", round_index)
    )
    if not picked:
        return 0
    connection.execute(
        sa.insert(_items),
        [
            {
                "row_id": row_id,
                "kind": GOLD,
                "gold_label": labeled[row_id],
                "required_answers": 0,
                "status": OPEN,
                "round_index": round_index,
                "position": len(gold_rows) + rank,
                "created_at": now,
            }
            for rank, row_id in enumerate(picked)
        ],
    )
    return len(picked)
