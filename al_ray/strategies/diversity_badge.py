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
        chunk_rows: Rows converted to float64 and checked per block.

    Returns:
        Positions into the candidate arrays, shape ``(min(n, m),)``, int64,
        distinct, in selection order.

    Raises:
        StrategyError: For a negative ``n`` or ``seed``, a ``chunk_rows``
            below 1, arrays that are not 2-D or differ in row count, no
            columns, a NaN or an inf, or gradient norms so large that the sum
            of squared distances would overflow float64.

    Notes:
        Memory beyond the inputs: one float64 copy of each input that is not
        already float64, plus a few ``(m,)`` vectors. Each pick costs
        ``O(m * (K + d))`` time.
    """
    n = check_count(n)
    seed = check_seed(seed)
    chunk_rows = check_chunk_rows(chunk_rows)
    a, a_norms = as_float64_rows("factors", factors, chunk_rows)
    h, h_norms = as_float64_rows("embeddings", embeddings, chunk_rows, n_rows=a.shape[0])

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
    n_terms = a.shape[1] + h.shape[1]
    is_picked = np.zeros(m, dtype=bool)
    nearest = np.full(m, np.inf)
    pick = int(np.argmax(gradient_norms))
    for step in range(n_selected):
        selected[step] = pick
        is_picked[pick] = True
        if step + 1 == n_selected:
            break
        np.minimum(
            nearest,
            _squared_distances_to_row(a, h, gradient_norms, pick, n_terms),
            out=nearest,
        )
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
    0, with rounding noise around 0 set to exactly 0.
    """
    cross = (a @ a[center]) * (h @ h[center])
    squared = gradient_norms + gradient_norms[center] - 2.0 * cross
    np.maximum(squared, 0.0, out=squared)
    zero_rounding_noise(squared, gradient_norms + gradient_norms[center], n_terms)
    return squared
