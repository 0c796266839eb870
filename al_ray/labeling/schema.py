"""Tables of the human-labeling queue, kept in the label store's database beside its own tables.

The tables live on their own :class:`sqlalchemy.MetaData`, so the label
store's schema and its ``schema_version`` do not change: a store written
before these tables existed gets them the first time a queue opens it. Their
own version is stored under the ``labeling_schema_version`` key of the
store's ``meta`` table.

- ``annotators``: one row per person, with the SHA-256 hash of their token.
- ``queue_items``: one item per row to label (``kind`` ``"task"``, at most one
  per row) or per gold row with a known label (``kind`` ``"gold"``, at most
  one per row). A task item is open until its answers are aggregated, and
  then stores the consensus label. Gold items stay open.
- ``leases``: who holds which item until when. One row per
  ``(item_id, annotator_id)``, so an annotator holds an item at most once.
- ``annotations``: one answer per ``(item_id, annotator_id)``; a
  ``(annotator_id, submission_id)`` pair is stored once, so a replayed
  request cannot add a second answer.

Status columns have no CHECK constraint, for the reason given in the label
store's schema: SQLite changes a constraint only by rebuilding the table.
"""

from __future__ import annotations

import sqlalchemy as sa

from al_ray.errors import LabelStoreError
from al_ray.labels._schema import meta_table

__all__ = [
    "LABELING_SCHEMA_VERSION",
    "annotations_table",
    "annotators_table",
    "ensure_labeling_schema",
    "leases_table",
    "metadata",
    "queue_items_table",
]

LABELING_SCHEMA_VERSION = 1

_VERSION_KEY = "labeling_schema_version"

# SQLite gives automatic increments only to an INTEGER PRIMARY KEY column.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

annotators_table = sa.Table(
    "annotators",
    metadata,
    sa.Column("annotator_id", sa.String(64), primary_key=True),
    # SHA-256 hex digest of the token; the token itself is never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

queue_items_table = sa.Table(
    "queue_items",
    metadata,
    sa.Column("item_id", _ID, primary_key=True, autoincrement=True),
    sa.Column("row_id", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    # The known label of a gold item; NULL for a task item.
    sa.Column("gold_label", sa.String, nullable=True),
    # Answers from different annotators that resolve the item; a tie may raise it.
    sa.Column("required_answers", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("round_index", sa.Integer, nullable=False),
    # Rank within its round, 0 first: tasks are handed out best-first.
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("resolved_at", sa.Double, nullable=True),
    # Set when a task item is resolved: the aggregated label, the annotator
    # name of the consensus answer ("consensus:majority"), and its confidence.
    sa.Column("consensus_label", sa.String, nullable=True),
    sa.Column("consensus_by", sa.String(64), nullable=True),
    sa.Column("confidence", sa.Double, nullable=True),
    sa.Column("consensus_at", sa.Double, nullable=True),
    sa.UniqueConstraint("row_id", "kind", name="uq_queue_items_row_kind"),
    sa.Index("ix_queue_items_open", "kind", "status", "round_index", "position"),
)

leases_table = sa.Table(
    "leases",
    metadata,
    sa.Column(
        "item_id",
        _ID,
        sa.ForeignKey("queue_items.item_id", name="fk_leases_item"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("annotator_id", sa.String(64), primary_key=True),
    sa.Column("leased_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
    # "active", "answered", "skipped" or "expired".
    sa.Column("state", sa.String(16), nullable=False),
    sa.Index("ix_leases_annotator", "annotator_id", "state"),
    sa.Index("ix_leases_state", "state", "expires_at"),
)

annotations_table = sa.Table(
    "annotations",
    metadata,
    sa.Column("annotation_id", _ID, primary_key=True, autoincrement=True),
    sa.Column(
        "item_id",
        _ID,
        sa.ForeignKey("queue_items.item_id", name="fk_annotations_item"),
        nullable=False,
    ),
    sa.Column("row_id", sa.BigInteger, nullable=False),
    # Not a foreign key: answers imported from Label Studio name annotators
    # that have no token here.
    sa.Column("annotator_id", sa.String(64), nullable=False),
    sa.Column("label", sa.String, nullable=False),
    sa.Column("submission_id", sa.String(128), nullable=False),
    sa.Column("answered_at", sa.Double, nullable=False),
    sa.UniqueConstraint("annotator_id", "submission_id", name="uq_annotations_submission"),
    sa.UniqueConstraint("item_id", "annotator_id", name="uq_annotations_item_annotator"),
)


def ensure_labeling_schema(connection: sa.Connection, where: str) -> None:
    """Create the missing queue tables and check their version, in the caller's write transaction.

    Raises
    ------
    LabelStoreError
        If the store contains queue tables of a version this code does not know.
    """
    metadata.create_all(connection, checkfirst=True)
    stored = connection.execute(
        sa.select(meta_table.c.value).where(meta_table.c.key == _VERSION_KEY)
    ).scalar_one_or_none()
    if stored is None:
        connection.execute(
            sa.insert(meta_table).values(key=_VERSION_KEY, value=str(LABELING_SCHEMA_VERSION))
        )
        return
    if stored != str(LABELING_SCHEMA_VERSION):
        raise LabelStoreError(
            f"Label store {where!r} has labeling tables of version {stored}, but this al_ray reads "
            f"version {LABELING_SCHEMA_VERSION}. Open it with the al_ray release that wrote it, "
            "or start the run with a new label store."
        )
