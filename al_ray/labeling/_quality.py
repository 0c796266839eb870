"""The admin view's figures: agreement between annotators, accuracy on gold rows, and counts.

Agreement (Cohen's kappa per pair, Fleiss' kappa over everyone) is computed on
answers to task items; accuracy on answers to gold items. Undefined figures
(too few shared rows, no gold answers) are ``None``, so the summary is valid JSON.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from al_ray.labeling._leasing import GOLD, OPEN, RESOLVED, TASK
from al_ray.labeling.aggregation import Vote
from al_ray.labeling.agreement import fleiss_kappa, gold_accuracy, pairwise_cohen

__all__ = ["ACTIVE", "DEACTIVATED", "IMPORTED", "summarize"]

# Values of an annotator's ``status`` in the summary.
ACTIVE = "active"
DEACTIVATED = "deactivated"
IMPORTED = "imported"


def summarize(
    classes: Sequence[str],
    answer_rows: Sequence[sa.Row],
    skipped: Mapping[str, int],
    annotator_rows: Sequence[sa.Row],
    item_counts: Sequence[sa.Row],
) -> dict[str, Any]:
    """Return the quality summary.

    Parameters
    ----------
    classes
        Class names.
    answer_rows
        One row per stored answer with ``row_id``, ``annotator_id``, ``label``,
        ``answered_at``, and the item's ``kind`` and ``gold_label``.
    skipped
        Items skipped, per annotator id.
    annotator_rows
        ``(annotator_id, role, active)`` of every registered annotator.
    item_counts
        ``(kind, status, count)`` of the queue items.

    Returns
    -------
    dict
        ``annotators``: per annotator ``annotator_id``, ``role`` (None for one
        known only from imported answers), ``status`` (``"active"``,
        ``"deactivated"``, or ``"imported"`` for an id known only from
        imported answers), ``answers``, ``gold_answers``, ``gold_correct``,
        ``gold_accuracy`` and ``skipped``.
        ``pairs``: per pair sharing two or more rows, ``annotators``, ``kappa``
        and ``shared``. ``fleiss_kappa``, ``mean_cohen_kappa`` and
        ``gold_accuracy`` (pooled over annotators). ``items``: open and
        resolved task items and gold items. ``answers``: task and gold answers.
    """
    task_votes: list[Vote] = []
    gold_votes: list[Vote] = []
    gold: dict[int, str] = {}
    for row in answer_rows:
        vote = Vote(row.row_id, row.annotator_id, row.label, row.answered_at)
        if row.kind == GOLD:
            gold_votes.append(vote)
            gold[row.row_id] = row.gold_label
        else:
            task_votes.append(vote)

    pairs = pairwise_cohen(task_votes)
    defined_kappas = [kappa for kappa, _ in pairs.values() if not math.isnan(kappa)]
    accuracy = gold_accuracy(gold_votes, gold)
    n_gold_correct = sum(correct for correct, _, _ in accuracy.values())
    answers_by_annotator = Counter(vote.annotator for vote in task_votes)

    accounts = {
        row.annotator_id: (row.role, ACTIVE if row.active else DEACTIVATED) for row in annotator_rows
    }
    known_ids = sorted(set(accounts) | set(answers_by_annotator) | set(accuracy) | set(skipped))
    annotators = []
    for annotator_id in known_ids:
        # An id with answers but no account came with answers imported from Label Studio.
        role, status = accounts.get(annotator_id, (None, IMPORTED))
        correct, total, share = accuracy.get(annotator_id, (0, 0, math.nan))
        annotators.append(
            {
                "annotator_id": annotator_id,
                "role": role,
                "status": status,
                "answers": answers_by_annotator.get(annotator_id, 0),
                "gold_answers": total,
                "gold_correct": correct,
                "gold_accuracy": _finite_or_none(share),
                "skipped": int(skipped.get(annotator_id, 0)),
            }
        )

    counts = {(row[0], row[1]): int(row[2]) for row in item_counts}
    return {
        "annotators": annotators,
        "pairs": [
            {"annotators": [first, second], "kappa": _finite_or_none(kappa), "shared": shared}
            for (first, second), (kappa, shared) in pairs.items()
        ],
        "fleiss_kappa": _finite_or_none(fleiss_kappa(task_votes, classes)),
        "mean_cohen_kappa": (
            sum(defined_kappas) / len(defined_kappas) if defined_kappas else None
        ),
        "gold_accuracy": n_gold_correct / len(gold_votes) if gold_votes else None,
        "items": {
            "open": counts.get((TASK, OPEN), 0),
            "resolved": counts.get((TASK, RESOLVED), 0),
            "gold": sum(count for (kind, _), count in counts.items() if kind == GOLD),
        },
        "answers": {"task": len(task_votes), "gold": len(gold_votes)},
    }


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
