"""Resolving task items: their answers aggregated into one consensus label per row.

Every function runs inside the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa

from al_ray.labeling._leasing import OPEN, RESOLVED, TASK, answer_count
from al_ray.labeling.aggregation import Vote, aggregate, majority_vote, select_method
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.schema import annotations_table, queue_items_table
from al_ray.labels import Answer
from al_ray.labels._tasks import chunks

__all__ = ["resolve_items", "stored_consensus", "task_votes"]

logger = logging.getLogger(__name__)

_items = queue_items_table
_annotations = annotations_table


def task_votes(connection: sa.Connection) -> list[Vote]:
    """Return every answer to a task item as a :class:`Vote`; gold answers are left out."""
    rows = connection.execute(
        sa.select(
            _annotations.c.row_id,
            _annotations.c.annotator_id,
            _annotations.c.label,
            _annotations.c.answered_at,
        )
        .join(_items, _items.c.item_id == _annotations.c.item_id)
        .where(_items.c.kind == TASK)
    ).all()
    return [Vote(row.row_id, row.annotator_id, row.label, row.answered_at) for row in rows]


def resolve_items(
    connection: sa.Connection,
    classes: tuple[str, ...],
    config: LabelingConfig,
    seed: int,
    now: float,
) -> list[Answer]:
    """Resolve the open task items that have all their answers, and return their consensus answers.

    With the ``defer`` tie rule a tied item instead asks one more annotator,
    until it reaches ``config.max_answers``; a tie at that limit is settled by
    a random draw seeded by ``(seed, row_id)``.
    """
    candidates = connection.execute(
        sa.select(_items.c.item_id, _items.c.row_id, _items.c.required_answers)
        .where(
            _items.c.kind == TASK,
            _items.c.status == OPEN,
            answer_count(_items.c.item_id) >= _items.c.required_answers,
        )
        .order_by(_items.c.round_index, _items.c.position)
    ).all()
    if not candidates:
        return []

    votes = task_votes(connection)
    method = select_method(
        votes, config.aggregation, min_answers_per_annotator=config.min_answers_per_annotator
    )
    votes_by_row: dict[int, list[Vote]] = {}
    for vote in votes:
        votes_by_row.setdefault(vote.row_id, []).append(vote)
    if method == "dawid_skene":
        # Dawid-Skene estimates each annotator from all their answers.
        used = votes
    else:
        used = [vote for item in candidates for vote in votes_by_row[item.row_id]]
    results = aggregate(used, classes, method=method, tie_rule=config.tie_rule, seed=seed)

    annotator = f"consensus:{method}"
    answers: list[Answer] = []
    for item in candidates:
        result = results[item.row_id]
        label, confidence = result.label, result.confidence
        if label is None:
            if item.required_answers < config.max_answers:
                _ask_one_more(connection, item.item_id, item.required_answers)
                logger.info(
                    "row_id %d is tied after %d answers; asking one more annotator",
                    item.row_id, result.n_votes,
                )
                continue
            drawn = majority_vote(
                votes_by_row[item.row_id], tie_rule="random", seed=seed, classes=classes
            )[item.row_id]
            # The random rule always picks one of the tied labels.
            label, confidence = cast(str, drawn.label), drawn.confidence
            logger.info(
                "row_id %d is still tied after %d answers, the most allowed; drew %r at random",
                item.row_id, result.n_votes, label,
            )
        answered_at = max(vote.answered_at for vote in votes_by_row[item.row_id])
        connection.execute(
            sa.update(_items)
            .where(_items.c.item_id == item.item_id)
            .values(
                status=RESOLVED,
                resolved_at=now,
                consensus_label=label,
                consensus_by=annotator,
                confidence=confidence,
                consensus_at=answered_at,
            )
        )
        answers.append(Answer(item.row_id, label, annotator, answered_at))
    return answers


def _ask_one_more(connection: sa.Connection, item_id: int, required_answers: int) -> None:
    connection.execute(
        sa.update(_items)
        .where(_items.c.item_id == item_id)
        .values(required_answers=required_answers + 1)
    )


def stored_consensus(connection: sa.Connection, row_ids: Sequence[int]) -> list[Answer]:
    """Return the consensus answers stored on resolved task items of ``row_ids``, by row_id."""
    answers: list[Answer] = []
    for chunk in chunks(row_ids):
        rows = connection.execute(
            sa.select(
                _items.c.row_id,
                _items.c.consensus_label,
                _items.c.consensus_by,
                _items.c.consensus_at,
            )
            .where(_items.c.kind == TASK, _items.c.status == RESOLVED, _items.c.row_id.in_(chunk))
            .order_by(_items.c.row_id)
        ).all()
        answers.extend(
            Answer(row.row_id, row.consensus_label, row.consensus_by, row.consensus_at)
            for row in rows
        )
    return answers
