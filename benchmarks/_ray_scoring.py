"""Score a Ray dataset of the synthetic pool with al_ray's distributed scoring path, timed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from al_ray.scoring.distributed import score_dataset_ray
from al_ray.strategies import SelectionContext, make_strategy

__all__ = ["RayScoring", "object_store_bytes", "score_on_ray"]


@dataclass(frozen=True)
class RayScoring:
    """The actor-pool settings of one scoring call, as in ``ScoringConfig``."""

    batch_rows: int = 4096
    num_actors: int = 2
    actor_num_cpus: float = 0.5


def object_store_bytes() -> int:
    """Return the object store capacity of the running Ray session."""
    import ray

    return int(ray.cluster_resources().get("object_store_memory", 0))


def score_on_ray(dataset, model, n: int, seed: int, settings: RayScoring) -> tuple[np.ndarray, float]:
    """Return the ``n`` margin-sampling picks of ``dataset`` and the seconds taken.

    The time covers what a round pays: starting the actor pool, scoring
    every row, merging the candidates in the driver and choosing from them.
    For a lazy dataset it also covers generating the rows.
    """
    strategy = make_strategy("margin")
    excluded = np.empty(0, dtype=np.int64)
    started = time.perf_counter()
    candidates = score_dataset_ray(
        dataset, strategy, model, excluded, n, seed, settings.batch_rows, settings.num_actors, settings.actor_num_cpus
    )
    selection = strategy.choose(candidates.batch, candidates.utilities, n, seed, SelectionContext())
    return selection.row_ids, time.perf_counter() - started
