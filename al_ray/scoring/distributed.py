"""Pool scoring on Ray Data: ``map_batches`` over an actor pool, top candidates per batch.

The strategy, the model and the excluded ids travel to the actors once per
round as one object-store reference that each actor fetches in its
constructor. Each batch returns only its own top candidates (``n`` rows, or
``candidate_factor * n`` for batch-diverse strategies, with the inputs their
selector needs), so the driver never receives the pool.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from al_ray.data.pool import FEATURES, ROW_ID, Pool
from al_ray.scoring.inputs import CandidateSet, candidates_for_batch, merge_candidates
from al_ray.strategies import Need, QueryStrategy, ScoringBatch

if TYPE_CHECKING:
    import ray.data

__all__ = ["score_dataset_ray", "score_pool_ray"]

logger = logging.getLogger(__name__)

_UTILITY = "utility"
_PAYLOAD_PREFIX = "candidate_"


class _TopCandidates:
    """Ray Data callable class: one instance per actor, built once per round."""

    def __init__(self, payload: list[Any]) -> None:
        import ray

        # The reference sits in a list because Ray Data passes constructor
        # arguments through without resolving object references.
        self.strategy, self.model, self.excluded, self.n, self.seed = ray.get(payload[0])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        candidates = candidates_for_batch(
            self.strategy, self.model, batch[ROW_ID], batch[FEATURES], self.excluded, self.n, self.seed
        )
        columns = {ROW_ID: candidates.batch.row_ids, _UTILITY: candidates.utilities}
        for need in self.strategy.candidate_needs:
            value = candidates.batch.field(need)
            if need is Need.COMMITTEE_PROBABILITIES:
                # Columns are row-major: (n_members, n_rows, k) travels as (n_rows, n_members, k).
                value = np.ascontiguousarray(value.transpose(1, 0, 2))
            columns[_PAYLOAD_PREFIX + need.value] = value
        return columns


def _candidate_set(part: dict[str, np.ndarray], strategy: QueryStrategy) -> CandidateSet:
    payload = {}
    for need in strategy.candidate_needs:
        value = part[_PAYLOAD_PREFIX + need.value]
        payload[need.value] = value.transpose(1, 0, 2) if need is Need.COMMITTEE_PROBABILITIES else value
    return CandidateSet(ScoringBatch(row_ids=part[ROW_ID], **payload), part[_UTILITY])


def score_pool_ray(
    pool: Pool,
    strategy: QueryStrategy,
    model,
    excluded: np.ndarray,
    n: int,
    seed: int,
    batch_rows: int,
    num_actors: int,
    actor_num_cpus: float,
) -> CandidateSet:
    """Score the pool with a Ray Data actor pool and merge the per-batch candidates."""
    return score_dataset_ray(
        pool.dataset(), strategy, model, excluded, n, seed, batch_rows, num_actors, actor_num_cpus
    )


def score_dataset_ray(
    dataset: ray.data.Dataset,
    strategy: QueryStrategy,
    model,
    excluded: np.ndarray,
    n: int,
    seed: int,
    batch_rows: int,
    num_actors: int,
    actor_num_cpus: float,
) -> CandidateSet:
    """Score every row of ``dataset`` with a Ray Data actor pool and merge the per-batch candidates.

    ``dataset`` has the pool's columns: ``row_id`` (int64, distinct) and
    ``features`` (a tensor column of shape ``(n_features,)`` per row). It may
    be lazy, for example read from Parquet or generated block by block, so a
    pool larger than memory streams through the actors. The driver holds only
    the running candidate set, never a block.
    """
    import ray

    # A committee travels whole in this payload, so every scoring actor computes
    # every member's probabilities. The alternative, member actors scoring
    # blocks, was measured in benchmarks/committee_scoring.py (2 cores, 5
    # logistic regressions of 0.32 MB). It won below about 600,000 rows only
    # because this actor pool starts afresh each round. Per row this path was
    # twice as fast, because it reads each block once, not once per member.
    # With scoring.mode auto the Ray path runs above 2,000,000 rows, where this
    # path wins.
    # NOTE: for members of hundreds of MB or members on GPUs, measure again.
    payload = ray.put((strategy, model, excluded, n, seed))
    candidates = dataset.map_batches(
        _TopCandidates,
        fn_constructor_kwargs={"payload": [payload]},
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=actor_num_cpus,
        batch_size=batch_rows,
        batch_format="numpy",
    )
    count = strategy.candidate_count(n)
    best = merge_candidates([], count, seed, strategy)
    for part in candidates.iter_batches(batch_size=None, batch_format="numpy"):
        if len(part[ROW_ID]):
            best = merge_candidates([best, _candidate_set(part, strategy)], count, seed, strategy)
    return best
