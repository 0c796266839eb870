"""The durable round counter: each round goes started -> queried -> completed.

Every function runs inside the caller's write transaction. Repeating the step a
round already took is a no-op (or, for completion, a no-op when the stored
metrics and model path are equal), so a loop that resumes after a crash can
replay its last step. Going backwards, skipping ahead of an open round, or
beginning a round at or below the last completed one raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from al_ray.errors import LabelStoreError
from al_ray.labels._schema import rounds_table
from al_ray.labels.types import COMPLETED, QUERIED, STARTED

__all__ = [
    "begin_round",
    "complete_round",
    "encode_metrics",
    "last_completed_round",
    "mark_round_queried",
    "round_records",
    "round_status",
]


def round_status(connection: sa.Connection, round_index: int) -> str | None:
    """Return the stored status of ``round_index``, or ``None`` if it was never begun."""
    statement = sa.select(rounds_table.c.status).where(rounds_table.c.round_index == round_index)
    return connection.execute(statement).scalar_one_or_none()


def last_completed_round(connection: sa.Connection) -> int | None:
    """Return the highest completed round index, or ``None`` if no round is completed."""
    statement = sa.select(sa.func.max(rounds_table.c.round_index)).where(
        rounds_table.c.status == COMPLETED
    )
    return connection.execute(statement).scalar_one_or_none()


def begin_round(connection: sa.Connection, round_index: int, now: float) -> None:
    """Store ``round_index`` as started, unless it is already started or queried."""
    status = round_status(connection, round_index)
    if status in (STARTED, QUERIED):
        return
    if status == COMPLETED:
        raise LabelStoreError(
            f"Cannot begin round {round_index}: it is already completed. "
            f"Begin round {_next_round(connection)} instead."
        )

    open_rounds = connection.execute(
        sa.select(rounds_table.c.round_index, rounds_table.c.status)
        .where(rounds_table.c.status != COMPLETED)
        .order_by(rounds_table.c.round_index)
    ).all()
    if open_rounds:
        other_index, other_status = open_rounds[0]
        raise LabelStoreError(
            f"Cannot begin round {round_index}: round {other_index} is still {other_status}. "
            f"Complete round {other_index} first."
        )
    last = last_completed_round(connection)
    if last is not None and round_index <= last:
        raise LabelStoreError(
            f"Cannot begin round {round_index}: round {last} is already completed, "
            f"so the next round must have an index above {last}."
        )

    connection.execute(
        sa.insert(rounds_table).values(round_index=round_index, status=STARTED, started_at=now)
    )


def mark_round_queried(connection: sa.Connection, round_index: int, now: float) -> None:
    """Store that every task of ``round_index`` is posted."""
    status = round_status(connection, round_index)
    if status is None:
        raise LabelStoreError(
            f"Cannot mark round {round_index} as queried: it was never begun. "
            f"Call begin_round({round_index}) first."
        )
    if status == COMPLETED:
        raise LabelStoreError(
            f"Cannot mark round {round_index} as queried: it is already completed."
        )
    if status == QUERIED:
        return
    connection.execute(
        sa.update(rounds_table)
        .where(rounds_table.c.round_index == round_index)
        .values(status=QUERIED, queried_at=now)
    )


def complete_round(
    connection: sa.Connection,
    round_index: int,
    metrics_json: str,
    model_path: str | None,
    now: float,
) -> None:
    """Store ``round_index`` as completed with its metrics and model path."""
    row = connection.execute(
        sa.select(rounds_table.c.status, rounds_table.c.metrics, rounds_table.c.model_path).where(
            rounds_table.c.round_index == round_index
        )
    ).one_or_none()
    if row is None:
        raise LabelStoreError(
            f"Cannot complete round {round_index}: it was never begun. "
            f"Call begin_round({round_index}) first."
        )
    if row.status == COMPLETED:
        if row.metrics == metrics_json and row.model_path == model_path:
            return
        raise LabelStoreError(
            f"Round {round_index} is already completed with metrics {row.metrics} and model "
            f"path {row.model_path!r}; completing it again with metrics {metrics_json} and "
            f"model path {model_path!r} would overwrite them. Begin a new round instead."
        )
    connection.execute(
        sa.update(rounds_table)
        .where(rounds_table.c.round_index == round_index)
        .values(status=COMPLETED, metrics=metrics_json, model_path=model_path, completed_at=now)
    )


def round_records(connection: sa.Connection) -> list[dict[str, Any]]:
    """Return every round as a dict, ordered by round index."""
    rows = connection.execute(sa.select(rounds_table).order_by(rounds_table.c.round_index)).all()
    return [
        {
            "round_index": row.round_index,
            "status": row.status,
            "metrics": {} if row.metrics is None else json.loads(row.metrics),
            "model_path": row.model_path,
            "started_at": row.started_at,
            "queried_at": row.queried_at,
            "completed_at": row.completed_at,
        }
        for row in rows
    ]


def encode_metrics(round_index: int, metrics: Mapping[str, float]) -> str:
    """Return ``metrics`` as JSON text with sorted keys and float values.

    NaN and infinite values are kept, written as ``NaN`` and ``Infinity``, which
    Python's ``json`` module reads back.
    """
    if not isinstance(metrics, Mapping):
        raise LabelStoreError(
            f"Metrics of round {round_index} must be a mapping of name to float, "
            f"got {type(metrics).__name__}."
        )
    encoded: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str):
            raise LabelStoreError(
                f"Metric names of round {round_index} must be strings, got {name!r}."
            )
        try:
            encoded[name] = float(value)
        except (TypeError, ValueError):
            raise LabelStoreError(
                f"Metric {name!r} of round {round_index} must be a number, got {value!r}."
            ) from None
    return json.dumps(encoded, sort_keys=True)


def _next_round(connection: sa.Connection) -> int:
    last = last_completed_round(connection)
    return 0 if last is None else last + 1
