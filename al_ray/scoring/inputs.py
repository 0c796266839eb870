"""Compute what a strategy needs for one batch of pool rows."""

from __future__ import annotations

import numpy as np

from al_ray.errors import ScoringError
from al_ray.strategies import Need, QueryStrategy, ScoringBatch
from al_ray.strategies.selection import Selection, empty_selection, select_top_n

__all__ = ["build_batch", "score_batch"]


def build_batch(needs: frozenset[Need], model, row_ids: np.ndarray, features: np.ndarray) -> ScoringBatch:
    """Return a :class:`ScoringBatch` holding exactly the inputs in ``needs``."""
    probabilities = None
    if Need.PROBABILITIES in needs:
        probabilities = model.predict_proba(features)
        if probabilities.shape != (features.shape[0], model.n_classes):
            raise ScoringError(
                f"the model returned probabilities of shape {probabilities.shape}, "
                f"expected ({features.shape[0]}, {model.n_classes})"
            )
    return ScoringBatch(
        row_ids=row_ids,
        probabilities=probabilities,
        features=features if Need.FEATURES in needs else None,
    )


def score_batch(
    strategy: QueryStrategy,
    model,
    row_ids: np.ndarray,
    features: np.ndarray,
    excluded: np.ndarray,
    n: int,
    seed: int,
) -> tuple[Selection, int]:
    """Score one batch and return its top ``n`` candidates and the number of rows scored.

    ``excluded`` is a sorted int64 array of row ids (labeled or already
    queried) that are dropped before scoring.
    """
    row_ids = np.asarray(row_ids, dtype=np.int64)
    if excluded.size:
        keep = ~np.isin(row_ids, excluded, assume_unique=False)
        row_ids, features = row_ids[keep], features[keep]
    if row_ids.size == 0:
        return empty_selection(), 0
    batch = build_batch(strategy.needs, model, row_ids, features)
    utilities = strategy.utility(batch, seed)
    return select_top_n(row_ids, utilities, n, seed), int(row_ids.size)
