"""SQL of leasing: which items an annotator may be given, and how many answers an item still needs.

Every function runs inside the caller's transaction. An item's answers are
taken up by its stored annotations plus the leases that still hold it
(state ``"active"`` and not yet expired). A task item with fewer taken-up
answers than ``required_answers`` may be leased to one more annotator. The
caller's write transaction runs alone, so a count read here is still true
when the lease is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from al_ray.labeling.schema import annotations_table, leases_table, queue_items_table

__all__ = [
    "ACTIVE",
    "ANSWERED",
    "EXPIRED",
    "GOLD",
    "OPEN",
    "RESOLVED",
    "SKIPPED",
    "TASK",
    "ItemRow",
    "answer_count",
    "available_tasks",
    "end_leases",
    "expire_leases",
    "find_gold_item",
    "find_task_item",
    "held_lease",
    "holder_count",
    "write_lease",
]

# Item kinds and statuses.
TASK = "task"
GOLD = "gold"
OPEN = "open"
RESOLVED = "resolved"

# Lease states.
ACTIVE = "active"
ANSWERED = "answered"
SKIPPED = "skipped"
EXPIRED = "expired"

_items = queue_items_table
_leases = leases_table
_annotations = annotations_table


@dataclass(frozen=True)
class ItemRow:
    """The columns of a queue item that leasing returns."""

    item_id: int
    row_id: int
    round_index: int
    kind: str


def answer_count(item_id_column: sa.ColumnElement[int]) -> sa.ScalarSelect[int]:
    """Return a subquery counting the stored answers of the item in ``item_id_column``."""
    return (
        sa.select(sa.func.count())
        .select_from(_annotations)
        .where(_annotations.c.item_id == item_id_column)
        .scalar_subquery()
    )


def holder_count(item_id_column: sa.ColumnElement[int], now: float) -> sa.ScalarSelect[int]:
    """Return a subquery counting the unexpired active leases on the item in ``item_id_column``."""
    return (
        sa.select(sa.func.count())
        .select_from(_leases)
        .where(
            _leases.c.item_id == item_id_column,
            _leases.c.state == ACTIVE,
            _leases.c.expires_at > now,
        )
        .scalar_subquery()
    )


def expire_leases(connection: sa.Connection, now: float) -> int:
    """Mark active leases past their expiry as expired and return how many."""
    result = connection.execute(
        sa.update(_leases)
        .where(_leases.c.state == ACTIVE, _leases.c.expires_at <= now)
        .values(state=EXPIRED)
    )
    return result.rowcount


def end_leases(connection: sa.Connection, annotator_id: str, item_id: int | None = None) -> int:
    """Mark the annotator's active leases (on ``item_id`` only, when given) as expired and return how many.

    The items return to the queue at once. An expired lease is not a skip, so
    an item may come back to the same annotator later.
    """
    condition = sa.and_(_leases.c.annotator_id == annotator_id, _leases.c.state == ACTIVE)
    if item_id is not None:
        condition = sa.and_(condition, _leases.c.item_id == item_id)
    return connection.execute(sa.update(_leases).where(condition).values(state=EXPIRED)).rowcount


def held_lease(connection: sa.Connection, annotator_id: str, now: float) -> tuple[ItemRow, float] | None:
    """Return the open item the annotator holds an unexpired lease on, with the lease's expiry."""
    row = connection.execute(
        sa.select(_items.c.item_id, _items.c.row_id, _items.c.round_index, _items.c.kind, _leases.c.expires_at)
        .join(_leases, _leases.c.item_id == _items.c.item_id)
        .where(
            _leases.c.annotator_id == annotator_id,
            _leases.c.state == ACTIVE,
            _leases.c.expires_at > now,
            _items.c.status == OPEN,
        )
        .order_by(_leases.c.leased_at, _items.c.item_id)
        .limit(1)
    ).one_or_none()
    if row is None:
        return None
    return ItemRow(row.item_id, row.row_id, row.round_index, row.kind), row.expires_at


def _lease_in(annotator_id: str, states: tuple[str, ...]) -> sa.Exists:
    return (
        sa.select(_leases.c.item_id)
        .where(
            _leases.c.item_id == _items.c.item_id,
            _leases.c.annotator_id == annotator_id,
            _leases.c.state.in_(states),
        )
        .exists()
    )


def _answered_by(annotator_id: str) -> sa.Exists:
    return (
        sa.select(_annotations.c.item_id)
        .where(_annotations.c.item_id == _items.c.item_id, _annotations.c.annotator_id == annotator_id)
        .exists()
    )


def available_tasks(annotator_id: str, now: float) -> sa.Select:
    """Return a query of the open task items that ``annotator_id`` may be leased now.

    The annotator must not have answered or skipped the item, and the item must
    still need an answer. An item whose lease to this annotator expired is
    included, so a single annotator who let a lease run out can take it again.
    """
    taken = answer_count(_items.c.item_id) + holder_count(_items.c.item_id, now)
    return sa.select(_items.c.item_id, _items.c.row_id, _items.c.round_index, _items.c.kind).where(
        _items.c.kind == TASK,
        _items.c.status == OPEN,
        ~_lease_in(annotator_id, (ACTIVE, ANSWERED, SKIPPED)),
        ~_answered_by(annotator_id),
        taken < _items.c.required_answers,
    )


def find_task_item(connection: sa.Connection, annotator_id: str, now: float) -> ItemRow | None:
    """Return the next task item for the annotator: best-first, items they let expire last."""
    let_expire = sa.case((_lease_in(annotator_id, (EXPIRED,)), 1), else_=0)
    row = connection.execute(
        available_tasks(annotator_id, now)
        .order_by(let_expire, _items.c.round_index, _items.c.position, _items.c.item_id)
        .limit(1)
    ).one_or_none()
    return None if row is None else ItemRow(row.item_id, row.row_id, row.round_index, row.kind)


def find_gold_item(connection: sa.Connection, annotator_id: str) -> ItemRow | None:
    """Return the first gold item the annotator was never leased."""
    row = connection.execute(
        sa.select(_items.c.item_id, _items.c.row_id, _items.c.round_index, _items.c.kind)
        .where(
            _items.c.kind == GOLD,
            _items.c.status == OPEN,
            ~_lease_in(annotator_id, (ACTIVE, ANSWERED, SKIPPED, EXPIRED)),
            ~_answered_by(annotator_id),
        )
        .order_by(_items.c.round_index, _items.c.position, _items.c.item_id)
        .limit(1)
    ).one_or_none()
    return None if row is None else ItemRow(row.item_id, row.row_id, row.round_index, row.kind)


def write_lease(
    connection: sa.Connection, item_id: int, annotator_id: str, now: float, expires_at: float
) -> None:
    """Lease the item to the annotator, reusing the row of an earlier lease that expired."""
    updated = connection.execute(
        sa.update(_leases)
        .where(_leases.c.item_id == item_id, _leases.c.annotator_id == annotator_id)
        .values(leased_at=now, expires_at=expires_at, state=ACTIVE)
    )
    if updated.rowcount == 0:
        connection.execute(
            sa.insert(_leases).values(
                item_id=item_id,
                annotator_id=annotator_id,
                leased_at=now,
                expires_at=expires_at,
                state=ACTIVE,
            )
        )
