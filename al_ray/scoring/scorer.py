"""Choose the scoring path by pool size, select from the candidates, and time it."""

from __future__ import annotations

import logging
import time

import numpy as np

from al_ray.config import ScoringConfig
from al_ray.data.pool import Pool
from al_ray.scoring.distributed import score_pool_ray
from al_ray.scoring.local import score_pool_local
from al_ray.scoring.result import ScoringResult
from al_ray.strategies import QueryStrategy, SelectionContext

__all__ = ["choose_path", "score_pool"]

logger = logging.getLogger(__name__)


def choose_path(config: ScoringConfig, rows_to_score: int) -> str:
    """Return ``"local"`` or ``"ray"`` for a pool of ``rows_to_score`` rows."""
    if config.mode != "auto":
        return config.mode
    return "local" if rows_to_score <= config.local_max_rows else "ray"


def score_pool(
    pool: Pool,
    strategy: QueryStrategy,
    model,
    excluded: np.ndarray,
    n: int,
    seed: int,
    config: ScoringConfig,
    context: SelectionContext | None = None,
) -> ScoringResult:
    """Score every pool row not in ``excluded`` and select up to ``n``, best first.

    Both paths return the same selection for the same inputs: each row's
    utility and tie key depend only on the row, the model and the seed, and
    the strategy chooses from the same merged candidate set.
    """
    excluded = np.unique(np.asarray(excluded, dtype=np.int64))
    rows_to_score = len(pool) - int(np.isin(pool.row_ids, excluded).sum()) if excluded.size else len(pool)
    path = choose_path(config, rows_to_score)
    started = time.perf_counter()
    if path == "local":
        candidates = score_pool_local(pool, strategy, model, excluded, n, seed, config.batch_rows)
    else:
        candidates = score_pool_ray(
            pool,
            strategy,
            model,
            excluded,
            n,
            seed,
            config.batch_rows,
            config.num_actors,
            config.actor_num_cpus,
        )
    scored_s = time.perf_counter() - started
    selection = strategy.choose(candidates.batch, candidates.utilities, n, seed, context or SelectionContext())
    seconds = time.perf_counter() - started
    logger.debug(
        "scored %d rows on the %s path in %.3f s; chose %d of %d candidates in %.3f s",
        rows_to_score, path, scored_s, len(selection), len(candidates), seconds - scored_s,
    )
    return ScoringResult(selection, rows_to_score, path, seconds, strategy.name)
