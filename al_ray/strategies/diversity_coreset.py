"""Core-set selection by greedy k-center.

Reference: O. Sener and S. Savarese, "Active learning for convolutional neural
networks: a core-set approach", ICLR 2018. The greedy k-center step picks, n
times, the candidate farthest from its nearest center, where the centers are the
labeled rows and the candidates picked so far. That is a 2-approximation of the
minimax facility location the paper minimises.
"""

from __future__ import annotations

import numpy as np
from sklearn import config_context
from sklearn.metrics import pairwise_distances_argmin_min
from sklearn.metrics.pairwise import euclidean_distances

from al_ray.errors import StrategyError
from al_ray.strategies._diversity_common import (
    DEFAULT_CHUNK_ROWS,
    as_float64_rows,
    check_chunk_rows,
    check_count,
    zero_rounding_noise,
)

__all__ = ["greedy_k_center"]


def greedy_k_center(
    candidates: np.ndarray,
    labeled: np.ndarray | None,
    n: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> np.ndarray:
    """Select ``n`` candidates by greedy k-center, farthest from every center first.

    Each candidate keeps its Euclidean distance to the nearest center.
    Every pick takes the candidate with the largest such distance (the lowest
    position on ties), then updates all distances with one ``(m,)`` row of
    distances to the new center. A picked candidate's distance becomes -inf, so
    it is never picked again, while its exact duplicates drop to 0 and come
    only after every candidate at a positive distance.

    With no labeled rows, the first pick is the candidate farthest from the
    mean of the candidates (lowest position on ties), so the result needs no
    seed and is the same on every call.

    Args:
        candidates: Candidate features, shape ``(m, d)``, any real dtype.
        labeled: Labeled-set features, shape ``(l, d)``; None or ``l = 0`` for
            an empty labeled set.
        n: Number of candidates to select; ``min(n, m)`` come back.
        chunk_rows: Rows per side of each candidate-by-labeled distance block
            (scikit-learn's ``pairwise_dist_chunk_size``), so that step uses
            ``O(chunk_rows**2)`` memory per thread, never ``O(m * l)``.
            Values below 20, scikit-learn's minimum, count as 20.

    Returns:
        Positions into ``candidates``, shape ``(min(n, m),)``, int64, distinct,
        in selection order.

    Raises:
        StrategyError: For a negative ``n``, a ``chunk_rows`` below 1, arrays
            that are not 2-D, a column count that differs between
            ``candidates`` and ``labeled``, or a NaN or inf in either.
    """
    n = check_count(n)
    chunk_rows = check_chunk_rows(chunk_rows)
    points, squared_norms = as_float64_rows("candidates", candidates, chunk_rows)
    if labeled is None:
        labeled = np.empty((0, points.shape[1]), dtype=np.float64)
    centers, center_norms = as_float64_rows("labeled", labeled, chunk_rows)
    if centers.shape[0] > 0 and centers.shape[1] != points.shape[1]:
        raise StrategyError(
            f"labeled must have the candidates' {points.shape[1]} columns, "
            f"got shape {centers.shape}; pass features from the same model"
        )

    n_selected = min(n, points.shape[0])
    if n_selected == 0:
        return np.empty(0, dtype=np.int64)

    # The inputs were checked above, so scikit-learn may skip its own
    # finiteness scan on every call below. It rejects chunk sizes below 20.
    sklearn_chunk_rows = max(chunk_rows, 20)
    with config_context(assume_finite=True, pairwise_dist_chunk_size=sklearn_chunk_rows):
        if centers.shape[0] > 0:
            # scikit-learn's chunked nearest-neighbour reduction: it keeps one
            # block of chunk_rows x chunk_rows distances per thread, never m x l.
            nearest_center, nearest = pairwise_distances_argmin_min(points, centers)
            squared = nearest**2
            zero_rounding_noise(
                squared, squared_norms + center_norms[nearest_center], points.shape[1]
            )
            nearest[squared == 0.0] = 0.0
        else:
            # Direct differences, not the dot-product expansion: near-ties to the
            # mean must not be decided by cancellation error. Memory is O(m * d).
            mean = points.mean(axis=0, keepdims=True)
            nearest = np.sqrt(((points - mean) ** 2).sum(axis=1))

        selected = np.empty(n_selected, dtype=np.int64)
        for step in range(n_selected):
            pick = int(np.argmax(nearest))
            selected[step] = pick
            nearest[pick] = -np.inf
            if step + 1 == n_selected:
                break
            to_pick = euclidean_distances(
                points,
                points[pick : pick + 1],
                X_norm_squared=squared_norms,
                Y_norm_squared=squared_norms[pick : pick + 1],
                squared=True,
            )[:, 0]
            zero_rounding_noise(to_pick, squared_norms + squared_norms[pick], points.shape[1])
            np.minimum(nearest, np.sqrt(to_pick, out=to_pick), out=nearest)
    return selected
