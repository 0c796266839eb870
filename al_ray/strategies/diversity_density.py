"""Information density: utility weighted by how typical a row is of the pool.

Reference: B. Settles and M. Craven, "An analysis of active learning strategies
for sequence labeling tasks", EMNLP 2008. A row's weighted utility is
``u_i * (mean_j cos(x_i, y_j))^beta`` over reference rows ``y_j`` drawn from
the pool, so an uncertain outlier ranks below an equally uncertain row from a
dense region.

Cosine similarity is linear in the unit vectors, so the mean over references
is one dot product: ``mean_j cos(x_i, y_j) = x_i/|x_i| . mean_j y_j/|y_j|``.
That makes the cost ``O((m + r) d)`` instead of ``O(m r d)``, with no
``(m, r)`` similarity matrix.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.preprocessing import normalize

from al_ray.errors import StrategyError
from al_ray.strategies._diversity_common import (
    DEFAULT_CHUNK_ROWS,
    as_float64_rows,
    as_float64_vector,
    check_chunk_rows,
)

__all__ = ["information_density"]


def information_density(
    utilities: np.ndarray,
    features: np.ndarray,
    reference: np.ndarray,
    *,
    beta: float = 1.0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> np.ndarray:
    """Weight each utility by the row's mean cosine similarity to the reference rows.

    Returns ``u_i * s_i ** beta``, where ``s_i`` is the mean cosine similarity
    of row i to the reference rows, clipped to ``[0, 1]``. Cosine similarity
    involving a zero vector is 0, and a zero reference row still counts in
    the mean. With ``beta = 0`` the utilities come back unchanged, because
    ``0 ** 0 = 1``.

    Args:
        utilities: Utility per candidate, shape ``(m,)``.
        features: Candidate features, shape ``(m, d)``, any real dtype.
        reference: Rows that stand for the pool, shape ``(r, d)`` with
            ``r >= 1``; the caller draws them, for example a uniform sample.
        beta: Exponent on the similarity, finite and >= 0; larger values
            favour dense regions more.
        chunk_rows: Rows normalised per block, so temporaries stay
            ``O(chunk_rows * d)``.

    Returns:
        Weighted utilities, shape ``(m,)``, float64, finite.

    Raises:
        StrategyError: For an invalid ``beta`` or ``chunk_rows``, no reference
            rows, arrays of the wrong shape, a column count that differs
            between ``features`` and ``reference``, or a NaN or inf.
    """
    chunk_rows = check_chunk_rows(chunk_rows)
    if (
        isinstance(beta, bool)
        or not isinstance(beta, numbers.Real)
        or not math.isfinite(beta)
        or beta < 0
    ):
        raise StrategyError(f"beta must be a finite number >= 0, got {beta!r}")
    points, _ = as_float64_rows("features", features, chunk_rows)
    weights = as_float64_vector("utilities", utilities, points.shape[0])
    references, _ = as_float64_rows("reference", reference, chunk_rows)
    if references.shape[0] == 0:
        raise StrategyError(
            "reference has no rows; pass at least one row sampled from the pool"
        )
    if references.shape[1] != points.shape[1]:
        raise StrategyError(
            f"reference must have the features' {points.shape[1]} columns, "
            f"got shape {references.shape}; sample it from the same pool"
        )

    # normalize() leaves zero rows at zero, which makes their similarity 0.
    reference_mean = np.zeros(references.shape[1])
    for start in range(0, references.shape[0], chunk_rows):
        reference_mean += normalize(references[start : start + chunk_rows]).sum(axis=0)
    reference_mean /= references.shape[0]

    similarity = np.empty(points.shape[0])
    for start in range(0, points.shape[0], chunk_rows):
        similarity[start : start + chunk_rows] = (
            normalize(points[start : start + chunk_rows]) @ reference_mean
        )
    # The mean of cosines lies in [-1, 1]; rounding can step just past 1.
    np.clip(similarity, 0.0, 1.0, out=similarity)
    return weights * similarity ** float(beta)
