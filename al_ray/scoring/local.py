"""In-process pool scoring: no actor start-up, the fastest path for small pools."""

from __future__ import annotations

import numpy as np

from al_ray.data.pool import Pool
from al_ray.scoring.inputs import CandidateSet, candidates_for_batch, merge_candidates
from al_ray.strategies import QueryStrategy

__all__ = ["score_pool_local"]


def score_pool_local(
    pool: Pool,
    strategy: QueryStrategy,
    model,
    excluded: np.ndarray,
    n: int,
    seed: int,
    batch_rows: int,
) -> CandidateSet:
    """Score the pool in this process, batch by batch, keeping a running candidate set."""
    count = strategy.candidate_count(n)
    best = merge_candidates([], count, seed, strategy)
    for row_ids, features in pool.iter_local_batches(batch_rows):
        part = candidates_for_batch(strategy, model, row_ids, features, excluded, n, seed)
        best = merge_candidates([best, part], count, seed, strategy)
    return best
