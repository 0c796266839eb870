"""BADGE: k-means++ seeding on gradient embeddings that are never formed.

Reference: J. T. Ash, C. Zhang, A. Krishnamurthy, J. Langford and A. Agarwal,
"Deep batch active learning by diverse, uncertain gradient lower bounds", ICLR
2020. The gradient embedding of row i is the outer product ``g_i = a_i ⊗ h_i``
of a per-class factor ``a_i`` (for cross-entropy at the predicted label,
``p_i - onehot(argmax p_i)``) and the penultimate-layer embedding ``h_i``.
Forming ``g`` takes ``m * K * d`` floats, 12 GB at m = 20 000, K = 100 and
d = 768 in float64. The inner product of two outer products factorizes as
``g_i . g_c = (a_i . a_c)(h_i . h_c)``, so every distance here costs
``O(K + d)`` per row and memory stays ``O(m * (K + d))``.

Float32 inputs (a torch model's embeddings) are used without a float64 copy,
which would double their memory and the bytes every pick reads. Their dot
products run in float32, and the rows whose float32 distance lies within
float32 rounding of zero are computed again in float64, so duplicates tie
exactly as they do for float64 input.
"""

from __future__ import annotations

import logging

import numpy as np

from al_ray.errors import StrategyError
from al_ray.strategies._diversity_common import (
    DEFAULT_CHUNK_ROWS,
    as_float64_rows,
    check_chunk_rows,
    check_count,
    check_seed,
    zero_rounding_noise,
)

__all__ = ["badge_select"]

logger = logging.getLogger(__name__)


def badge_select(
    factors: np.ndarray,
    embeddings: np.ndarray,
    n: int,
    seed: int,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> np.ndarray:
    """Select ``n`` candidates by k-means++ seeding on their gradient embeddings.

    The first pick is the row with the largest gradient norm ``|g_i|`` (lowest
    position on ties), as in the authors' code (github.com/JordanAsh/badge,
    ``query_strategies/badge_sampling.py``). Each later pick is
    drawn with probability proportional to ``D^2``, the squared distance from a
    row's gradient embedding to the nearest one picked so far (D² sampling).
    Picked rows have probability 0, so no position comes back twice. Once every
    unpicked row has ``D^2 = 0`` (all are duplicates of picked rows), the rest
    are taken by decreasing ``|g_i|``, lowest position on ties, with no more
    random draws.

    Args:
        factors: Per-class gradient factors ``a``, shape ``(m, K)``, any real
            dtype.
        embeddings: Embeddings ``h``, shape ``(m, d)``, any real dtype.
        n: Number of candidates to select; ``min(n, m)`` come back.
        seed: Seed of the ``numpy.random.default_rng`` that draws the picks.
        chunk_rows: Rows converted to float64 and checked per block, and
            rows recomputed in float64 per block for float32 input.

    Returns:
        Positions into the candidate arrays, shape ``(min(n, m),)``, int64,
        distinct, in selection order.

    Raises:
        StrategyError: For a negative ``n`` or ``seed``, a ``chunk_rows``
            below 1, arrays that are not 2-D or differ in row count, no
            columns, a NaN or an inf, or gradient norms so large that the sum
            of squared distances would overflow float64.

    Notes:
        Memory beyond the inputs: a few ``(m,)`` vectors, plus one float64
        copy of each input that is neither float64 nor float32 (and of a
        float32 input whose row norms are outside
        ``FLOAT32_SAFE_SQUARED_NORMS``). Each pick costs ``O(m * (K + d))``
        time. With float32 input, the squared distances above the recheck
        threshold carry float32 rounding, a relative error of at most
        1/16 and in practice about ``sqrt(K + d) * 6e-8``; the D² draws may
        then differ from those for the same values in float64.
    """
    n = check_count(n)
    seed = check_seed(seed)
    chunk_rows = check_chunk_rows(chunk_rows)
    a, a_norms = as_float64_rows("factors", factors, chunk_rows, keep_float32=True)
    h, h_norms = as_float64_rows(
        "embeddings", embeddings, chunk_rows, n_rows=a.shape[0], keep_float32=True
    )

    m = a.shape[0]

    # |g_i|^2 = |a_i|^2 |h_i|^2 for an outer product. Each squared distance is
    # at most 2 (|g_i|^2 + |g_c|^2), so this limit keeps the sum of m of them,
    # the D² sampling total, finite.
    norm_limit = np.finfo(np.float64).max / (4 * max(m, 1))
    with np.errstate(over="ignore"):
        gradient_norms = a_norms * h_norms
    too_large = np.flatnonzero(~(gradient_norms <= norm_limit))
    if too_large.size:
        raise StrategyError(
            f"gradient embedding norms |a_i|^2 |h_i|^2 above {norm_limit:.3g} at positions "
            f"{too_large[:5].tolist()} would overflow float64 in D² sampling; "
            "rescale the embeddings"
        )
    n_selected = min(n, m)
    selected = np.empty(n_selected, dtype=np.int64)
    if n_selected == 0:
        return selected

    rng = np.random.default_rng(seed)
    distances = _FactorizedDistances(a, h, gradient_norms, chunk_rows)
    is_picked = np.zeros(m, dtype=bool)
    nearest = np.full(m, np.inf)
    pick = int(np.argmax(gradient_norms))
    for step in range(n_selected):
        selected[step] = pick
        is_picked[pick] = True
        if step + 1 == n_selected:
            break
        np.minimum(nearest, distances.to_row(pick), out=nearest)
        nearest[pick] = 0.0
        total = nearest.sum()
        if total > 0.0:
            pick = int(rng.choice(m, p=nearest / total))
            continue

        # Every unpicked row duplicates a picked one: D² sampling has nothing to
        # draw from, so take the rest by gradient norm, then position.
        remaining = np.flatnonzero(~is_picked)
        order = remaining[np.lexsort((remaining, -gradient_norms[remaining]))]
        selected[step + 1 :] = order[: n_selected - step - 1]
        logger.debug(
            "BADGE: all %d unpicked rows have D^2 = 0 after %d picks; "
            "taking %d more by gradient norm",
            remaining.size,
            step + 1,
            n_selected - step - 1,
        )
        break
    return selected


def _squared_distances_to_row(
    a: np.ndarray,
    h: np.ndarray,
    gradient_norms: np.ndarray,
    center: int,
    n_terms: int,
) -> np.ndarray:
    """Return ``|g_i - g_center|^2`` for every row i, shape ``(m,)``, without forming g.

    ``|g_i - g_c|^2 = |g_i|^2 + |g_c|^2 - 2 (a_i . a_c)(h_i . h_c)``, clipped at
    0, with rounding noise around 0 set to exactly 0. The dot products run in
    the arrays' dtypes; the result is float64.
    """
    cross = np.multiply(a @ a[center], h @ h[center], dtype=np.float64)
    squared = gradient_norms + gradient_norms[center] - 2.0 * cross
    np.maximum(squared, 0.0, out=squared)
    zero_rounding_noise(squared, gradient_norms + gradient_norms[center], n_terms)
    return squared


class _FactorizedDistances:
    """Squared gradient distances to one row, in float32 where an input is float32.

    A float32 dot product of ``k`` terms is off by at most about
    ``k * eps32 * |x| |y|``, so the cross term ``(a_i . a_c)(h_i . h_c)`` is
    off by at most ``rounding * |g_i| |g_c|`` with ``rounding`` the sum of
    ``k * eps`` over the two factors, and the squared distance by at most
    ``rounding * (|g_i|^2 + |g_c|^2)``. Rows whose float32 distance is below
    16 times that bound are computed again in float64 with the float64 rule
    for duplicates. Above it, the distance is certainly positive, so float64
    would not have set it to 0 either.
    """

    _RECHECK_FACTOR = 16.0

    def __init__(self, a: np.ndarray, h: np.ndarray, gradient_norms: np.ndarray, chunk_rows: int) -> None:
        self._a = a
        self._h = h
        self._gradient_norms = gradient_norms
        self._chunk_rows = chunk_rows
        self._n_terms = a.shape[1] + h.shape[1]
        self._rounding = sum(
            array.shape[1] * float(np.finfo(array.dtype).eps)
            for array in (a, h)
            if array.dtype == np.float32
        )

    def to_row(self, center: int) -> np.ndarray:
        """Return ``|g_i - g_center|^2`` for every row i, float64, shape ``(m,)``."""
        squared = _squared_distances_to_row(
            self._a, self._h, self._gradient_norms, center, self._n_terms
        )
        if self._rounding == 0.0:
            return squared
        scale = self._gradient_norms + self._gradient_norms[center]
        recheck = np.flatnonzero(squared <= self._RECHECK_FACTOR * self._rounding * scale)
        a_center = self._a[center].astype(np.float64)
        h_center = self._h[center].astype(np.float64)
        for start in range(0, recheck.size, self._chunk_rows):
            rows = recheck[start : start + self._chunk_rows]
            cross = (self._a[rows].astype(np.float64) @ a_center) * (
                self._h[rows].astype(np.float64) @ h_center
            )
            exact = scale[rows] - 2.0 * cross
            np.maximum(exact, 0.0, out=exact)
            zero_rounding_noise(exact, scale[rows], self._n_terms)
            squared[rows] = exact
        return squared
