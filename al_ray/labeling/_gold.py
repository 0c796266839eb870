"""Gold rows: rows with a known label, mixed into an annotator's tasks to measure their accuracy.

Both the choice of gold rows and the choice of when to show one are seeded,
so a run with the same seed and the same answers makes the same choices.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import numpy as np

from al_ray.seeding import derive_seed

__all__ = ["draws_gold", "gold_target", "sample_gold_rows"]


def gold_target(n_task_items: int, gold_rate: float) -> int:
    """Return how many gold items the queue needs for ``n_task_items`` task items.

    An annotator who labels every task and sees gold at ``gold_rate`` answers
    ``n * rate / (1 - rate)`` gold items, each at most once, so that many are kept.
    """
    if gold_rate <= 0 or n_task_items <= 0:
        return 0
    return math.ceil(n_task_items * gold_rate / (1.0 - gold_rate))


def sample_gold_rows(
    labeled: Mapping[int, str], exclude: Collection[int], n_rows: int, seed: int
) -> list[int]:
    """Return up to ``n_rows`` labeled rows not in ``exclude``, drawn without replacement.

    The candidates are sorted before the draw, so the result depends on the
    seed and the set of labeled rows only, not on their order.
    """
    candidates = sorted(row_id for row_id in labeled if row_id not in exclude)
    n_rows = min(n_rows, len(candidates))
    if n_rows <= 0:
        return []
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(candidates), size=n_rows, replace=False)
    return [candidates[index] for index in picked.tolist()]


def draws_gold(seed: int, annotator_id: str, n_leases: int, gold_rate: float) -> bool:
    """Return whether the annotator's next item is gold, from a stream of their own.

    ``n_leases`` is the number of items the annotator was leased so far, so
    each of their leases gets its own draw whatever other annotators do.
    """
    if gold_rate <= 0:
        return False
    stream = derive_seed(seed, f"labeling.gold_mix.{annotator_id}", n_leases)
    return bool(np.random.default_rng(stream).random() < gold_rate)
