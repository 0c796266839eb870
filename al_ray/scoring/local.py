"""In-process pool scoring: no actor start-up, the fastest path for small pools."""

from __future__ import annotations

import numpy as np

from al_ray.data.pool import Pool
from al_ray.scoring.inputs import score_batch
from al_ray.scoring.result import ScoringResult
from al_ray.strategies import QueryStrategy
from al_ray.strategies.selection import merge_selections

__all__ = ["score_pool_local"]


def score_pool_local(
    pool: Pool,
    strategy: QueryStrategy,
    model,
    excluded: np.ndarray,
    n: int,
    seed: int,
    batch_rows: int,
) -> ScoringResult:
    """Score the pool in this process, batch by batch, keeping a running top ``n``."""
    best = merge_selections([], n, seed)
    scored = 0
    for row_ids, features in pool.iter_local_batches(batch_rows):
        candidates, count = score_batch(strategy, model, row_ids, features, excluded, n, seed)
        best = merge_selections([best, candidates], n, seed)
        scored += count
    return ScoringResult(selection=best, rows_scored=scored, path="local")
