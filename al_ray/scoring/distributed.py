"""Pool scoring on Ray Data: ``map_batches`` over an actor pool, top-n per batch.

The strategy, the model and the excluded ids travel to the actors once per
round as one object-store reference that each actor fetches in its
constructor. Each batch returns only its own top ``n`` candidates, so the
driver receives at most ``n`` rows per batch and never the pool.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from al_ray.data.pool import FEATURES, ROW_ID, Pool
from al_ray.scoring.inputs import score_batch
from al_ray.scoring.result import ScoringResult
from al_ray.strategies import QueryStrategy
from al_ray.strategies.selection import Selection, merge_selections

__all__ = ["score_pool_ray"]

logger = logging.getLogger(__name__)

_UTILITY = "utility"
_SCORED = "scored"
_CANDIDATE = "is_candidate"


class _TopCandidates:
    """Ray Data callable class: one instance per actor, built once per round."""

    def __init__(self, payload: list[Any]) -> None:
        import ray

        # The reference sits in a list because Ray Data passes constructor
        # arguments through without resolving object references.
        self.strategy, self.model, self.excluded, self.n, self.seed = ray.get(payload[0])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        selection, scored = score_batch(
            self.strategy,
            self.model,
            batch[ROW_ID],
            batch[FEATURES],
            self.excluded,
            self.n,
            self.seed,
        )
        # The batch's scored-row count rides in the first output row, so the driver
        # can sum throughput without a second pass. A batch with no candidate
        # (every row excluded, or an empty block) still sends that one row,
        # marked as not a candidate.
        if len(selection) == 0:
            return {
                ROW_ID: np.zeros(1, dtype=np.int64),
                _UTILITY: np.zeros(1),
                _SCORED: np.array([scored], dtype=np.int64),
                _CANDIDATE: np.zeros(1, dtype=bool),
            }
        counts = np.zeros(len(selection), dtype=np.int64)
        counts[0] = scored
        return {
            ROW_ID: selection.row_ids,
            _UTILITY: selection.utilities,
            _SCORED: counts,
            _CANDIDATE: np.ones(len(selection), dtype=bool),
        }


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
) -> ScoringResult:
    """Score the pool with a Ray Data actor pool and merge the per-batch candidates."""
    import ray

    payload = ray.put((strategy, model, excluded, n, seed))
    candidates = pool.dataset().map_batches(
        _TopCandidates,
        fn_constructor_kwargs={"payload": [payload]},
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=actor_num_cpus,
        batch_size=batch_rows,
        batch_format="numpy",
    )
    best = merge_selections([], n, seed)
    scored = 0
    for part in candidates.iter_batches(batch_size=None, batch_format="numpy"):
        scored += int(part[_SCORED].sum())
        real = part[_CANDIDATE]
        best = merge_selections(
            [best, Selection(part[ROW_ID][real], part[_UTILITY][real])], n, seed
        )
    return ScoringResult(selection=best, rows_scored=scored, path="ray")
