"""Tables of the label store, written in SQLAlchemy Core so that any SQLAlchemy URL works.

``tasks`` has one row per queried pool row, keyed by ``row_id``, so a row is
queried at most once over a whole run. ``answers`` may contain several answers
per task (several annotators, or a conflicting second label), but never the
same ``(row_id, annotator, label)`` twice. ``rounds`` is the durable round
counter and ``meta`` stores run-level strings such as the config fingerprint.

Status columns have no CHECK constraint, because SQLite can change a
constraint only by rebuilding the table, and a later schema may add statuses. The
store validates statuses in Python instead. ``schema_version`` has one row: a
store written by a newer al_ray whose schema this code does not know is
rejected instead of being misread.
"""

from __future__ import annotations

import sqlalchemy as sa

from al_ray.errors import LabelStoreError

__all__ = [
    "SCHEMA_VERSION",
    "answers_table",
    "ensure_schema",
    "meta_table",
    "metadata",
    "rounds_table",
    "schema_version_table",
    "tasks_table",
]

SCHEMA_VERSION = 1

# SQLite makes only an INTEGER PRIMARY KEY column an alias of its rowid, which
# is what gives it automatic increments; BIGINT would not be.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

tasks_table = sa.Table(
    "tasks",
    metadata,
    sa.Column("row_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("round_index", sa.Integer, nullable=False),
    # Rank of the row within its round's posting, 0 first, so the best-first
    # order of a selection survives a restart.
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("utility", sa.Double, nullable=True),
    sa.Column("model_version", sa.String, nullable=True),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("posted_at", sa.Double, nullable=False),
    sa.UniqueConstraint("round_index", "position", name="uq_tasks_round_position"),
)

answers_table = sa.Table(
    "answers",
    metadata,
    sa.Column("answer_id", _ID, primary_key=True, autoincrement=True),
    sa.Column(
        "row_id",
        sa.BigInteger,
        sa.ForeignKey("tasks.row_id", name="fk_answers_task"),
        nullable=False,
        index=True,
    ),
    sa.Column("label", sa.String, nullable=False),
    sa.Column("annotator", sa.String, nullable=False),
    sa.Column("answered_at", sa.Double, nullable=False),
    sa.Column("stored_at", sa.Double, nullable=False),
    sa.UniqueConstraint("row_id", "annotator", "label", name="uq_answers_row_annotator_label"),
)

rounds_table = sa.Table(
    "rounds",
    metadata,
    sa.Column("round_index", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String, nullable=False),
    # JSON object of metric name to float, set when the round completes.
    sa.Column("metrics", sa.Text, nullable=True),
    sa.Column("model_path", sa.Text, nullable=True),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("queried_at", sa.Double, nullable=True),
    sa.Column("completed_at", sa.Double, nullable=True),
)

meta_table = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

schema_version_table = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)


def ensure_schema(connection: sa.Connection, where: str) -> None:
    """Create missing tables and check the stored schema version, in the caller's transaction.

    Raises
    ------
    LabelStoreError
        If the store was written with a schema version this code does not know.
    """
    metadata.create_all(connection, checkfirst=True)
    versions = connection.execute(sa.select(schema_version_table.c.version)).scalars().all()
    if not versions:
        connection.execute(sa.insert(schema_version_table).values(version=SCHEMA_VERSION))
        return
    stored = max(versions)
    if stored != SCHEMA_VERSION:
        raise LabelStoreError(
            f"Label store {where!r} has schema version {stored}, but this al_ray reads "
            f"version {SCHEMA_VERSION}. Open it with the al_ray release that wrote it, "
            "or start the run with a new label store path."
        )
