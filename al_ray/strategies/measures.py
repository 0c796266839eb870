"""Uncertainty measures: class probabilities in, one utility per row out.

Each measure takes probabilities of shape ``(n_rows, n_classes)`` in any float
dtype, computes in float64 and returns finite utilities of shape ``(n_rows,)``
where higher means more uncertain. Zero probabilities are safe: entropy uses
``scipy.special.entr``, which defines ``0 * log 0 = 0``. Rows whose
probabilities do not sum to one (float16 rounding) are renormalised first.

Reference: B. Settles, "Active Learning Literature Survey", University of
Wisconsin-Madison Computer Sciences Technical Report 1648, 2009, section 3.1.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr

from al_ray.errors import StrategyError

__all__ = ["as_probabilities", "entropy", "least_confidence", "margin"]


def as_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Return ``probabilities`` as a validated, row-normalised float64 copy.

    Raises :class:`StrategyError` for a wrong shape, rows with no class
    columns, a NaN, an inf, a negative value, or a row whose sum is zero or
    overflows float64.
    """
    p = np.array(probabilities, dtype=np.float64, copy=True)
    if p.ndim != 2:
        raise StrategyError(f"probabilities must have shape (n_rows, n_classes), got {p.shape}")
    if p.shape[0] == 0:
        return p
    if p.shape[1] == 0:
        raise StrategyError(
            f"probabilities have no class columns, got shape {p.shape}; "
            "the model must predict at least one class"
        )
    if not np.all(np.isfinite(p)):
        raise StrategyError(
            "probabilities contain NaN or inf; check the model's predict_proba output"
        )
    if np.any(p < 0):
        raise StrategyError(
            f"probabilities must be >= 0, got a minimum of {p.min():.6g}; "
            "pass probabilities, not logits or log-probabilities"
        )
    with np.errstate(over="ignore"):
        totals = p.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise StrategyError("a row of probabilities sums to 0; every row needs some mass")
    if not np.all(np.isfinite(totals)):
        # Dividing by an infinite total would turn the row into zeros without an error.
        raise StrategyError(
            "a row of probabilities sums to more than the float64 maximum; "
            "pass probabilities in [0, 1], not unnormalised scores"
        )
    return p / totals


def least_confidence(probabilities: np.ndarray) -> np.ndarray:
    """Return ``1 - max_c p(c | x)`` per row: in ``[0, 1 - 1/n_classes]``."""
    p = as_probabilities(probabilities)
    if p.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    return 1.0 - p.max(axis=1)


def margin(probabilities: np.ndarray) -> np.ndarray:
    """Return ``1 - (p_first - p_second)`` per row, from the two largest probabilities.

    A small margin between the two likeliest classes gives a utility near 1.
    With a single class the margin is 1 and the utility 0.
    """
    p = as_probabilities(probabilities)
    if p.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    if p.shape[1] == 1:
        return np.zeros(p.shape[0], dtype=np.float64)
    top_two = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return 1.0 - (top_two[:, 1] - top_two[:, 0])


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Return the Shannon entropy ``-sum_c p log p`` per row, in nats."""
    p = as_probabilities(probabilities)
    if p.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    return entr(p).sum(axis=1)
