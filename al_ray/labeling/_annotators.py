"""Annotator rows: adding people, their tokens, their roles and whether they may sign in.

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from al_ray.labeling._checks import unknown_annotator
from al_ray.labeling.errors import AnnotatorExistsError, AuthenticationError
from al_ray.labeling.schema import annotators_table
from al_ray.labeling.tokens import hash_token, token_matches

__all__ = [
    "ROLES",
    "find_by_token",
    "insert_annotator",
    "list_annotators",
    "require_active",
    "update_annotator",
]

ROLES: tuple[str, ...] = ("annotator", "admin")

_annotators = annotators_table


def insert_annotator(
    connection: sa.Connection, annotator_id: str, role: str, token: str, now: float
) -> None:
    """Insert an active annotator with the hash of ``token``, raising if the id is taken."""
    exists = connection.execute(
        sa.select(_annotators.c.annotator_id).where(_annotators.c.annotator_id == annotator_id)
    ).first()
    if exists is not None:
        raise AnnotatorExistsError(
            f"Annotator {annotator_id!r} already exists. Choose another id, or issue a new "
            f"token for this one with `al-ray label annotators reset-token {annotator_id} CONFIG`."
        )
    connection.execute(
        sa.insert(_annotators).values(
            annotator_id=annotator_id,
            token_hash=hash_token(token),
            role=role,
            created_at=now,
            active=True,
        )
    )


def update_annotator(connection: sa.Connection, annotator_id: str, **values: Any) -> None:
    """Set columns of one annotator, raising if no annotator has the id."""
    updated = connection.execute(
        sa.update(_annotators).where(_annotators.c.annotator_id == annotator_id).values(**values)
    )
    if updated.rowcount == 0:
        raise unknown_annotator(annotator_id)


def list_annotators(connection: sa.Connection) -> list[dict[str, Any]]:
    """Return every annotator as ``{"annotator_id", "role", "active", "created_at"}``, by id."""
    rows = connection.execute(
        sa.select(
            _annotators.c.annotator_id,
            _annotators.c.role,
            _annotators.c.active,
            _annotators.c.created_at,
        ).order_by(_annotators.c.annotator_id)
    ).all()
    return [dict(row._mapping) for row in rows]


def find_by_token(connection: sa.Connection, token: str) -> tuple[str, str]:
    """Return ``(annotator_id, role)`` of the active annotator whose token this is.

    The row is found by the token's hash, and the hashes are compared again in
    constant time.
    """
    row = connection.execute(
        sa.select(_annotators).where(_annotators.c.token_hash == hash_token(token))
    ).one_or_none()
    if row is None or not token_matches(token, row.token_hash):
        raise AuthenticationError(
            "The token matches no annotator. Ask the run's admin for a token, or check that "
            "it was copied whole."
        )
    if not row.active:
        raise _deactivated(row.annotator_id)
    return row.annotator_id, row.role


def require_active(connection: sa.Connection, annotator_id: str) -> None:
    """Raise :class:`AuthenticationError` unless the annotator exists and is active."""
    active = connection.execute(
        sa.select(_annotators.c.active).where(_annotators.c.annotator_id == annotator_id)
    ).scalar_one_or_none()
    if active is None:
        raise unknown_annotator(annotator_id)
    if not active:
        raise _deactivated(annotator_id)


def _deactivated(annotator_id: str) -> AuthenticationError:
    return AuthenticationError(
        f"Annotator {annotator_id!r} is deactivated. Ask the run's admin to activate the "
        f"account again with `al-ray label annotators activate {annotator_id} CONFIG`."
    )
