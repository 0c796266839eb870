"""Top-n selection with deterministic, seed-derived tie-breaking.

Rows are ordered by utility (highest first), then by a tie key computed from
the round's seed and the row's ``row_id`` alone, then by ``row_id``. That order
is total and does not depend on where a row sits in the pool, so the top ``n``
of the union of per-batch top-``n`` lists equals the top ``n`` of the whole
pool. Distributed scoring relies on this to merge per-block candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from al_ray.errors import StrategyError

__all__ = [
    "Selection",
    "coarsen",
    "empty_selection",
    "merge_selections",
    "select_top_n",
    "tie_keys",
    "uniform_utility",
]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class Selection:
    """Selected rows, best first."""

    row_ids: np.ndarray
    """Selected row ids, shape ``(k,)``, int64, all distinct."""

    utilities: np.ndarray
    """Utility of each selected row, shape ``(k,)``, float64."""

    def __len__(self) -> int:
        return int(self.row_ids.shape[0])


def empty_selection() -> Selection:
    """Return a selection of no rows."""
    return Selection(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


def tie_keys(row_ids: np.ndarray, seed: int) -> np.ndarray:
    """Return a pseudo-random uint64 key per row, a function of ``(seed, row_id)`` only.

    The key is SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
    number generators", OOPSLA 2014) of ``row_id`` mixed with the seed, so equal
    utilities are ordered randomly but repeatably, whatever the batch layout.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(row_ids, dtype=np.int64).astype(np.uint64)
        z = z ^ np.uint64(int(seed) & 0xFFFFFFFFFFFFFFFF)
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def uniform_utility(row_ids: np.ndarray, seed: int) -> np.ndarray:
    """Return a uniform draw in [0, 1) per row from ``(seed, row_id)`` alone, shape ``(n_rows,)``.

    Batching cannot change which rows win. The top 53 bits of the key give an
    exact float64.
    """
    keys = tie_keys(row_ids, seed ^ 0x5DEECE66D)
    return (keys >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def select_top_n(row_ids: np.ndarray, utilities: np.ndarray, n: int, seed: int) -> Selection:
    """Return the ``n`` rows with the highest utility, best first.

    Fewer rows come back when fewer are given. Raises :class:`StrategyError`
    for a negative ``n``, mismatched shapes or a non-finite utility, because a
    NaN would sort arbitrarily and silently change the selection.
    """
    if n < 0:
        raise StrategyError(f"the number of rows to select must be >= 0, got {n}")
    row_ids = np.asarray(row_ids, dtype=np.int64)
    utilities = np.asarray(utilities, dtype=np.float64)
    if row_ids.ndim != 1 or utilities.shape != row_ids.shape:
        raise StrategyError(
            f"row_ids and utilities must be 1-D of equal length, "
            f"got shapes {row_ids.shape} and {utilities.shape}"
        )
    if not np.all(np.isfinite(utilities)):
        bad = row_ids[~np.isfinite(utilities)][:5].tolist()
        raise StrategyError(
            f"utilities must be finite; row_ids {bad} have NaN or inf. "
            "Check the model's probabilities for these rows"
        )
    if n == 0 or row_ids.size == 0:
        return empty_selection()

    keys = tie_keys(row_ids, seed)
    ranks = coarsen(utilities)
    # np.lexsort sorts by the last key first: utility descending, tie key, row_id.
    if row_ids.size > 4 * n:
        # Shrink to the rows that can reach the top n before the full sort:
        # everything at or above the n-th largest utility, ties included.
        threshold = np.partition(ranks, row_ids.size - n)[row_ids.size - n]
        keep = ranks >= threshold
        row_ids, utilities, keys, ranks = row_ids[keep], utilities[keep], keys[keep], ranks[keep]
    order = np.lexsort((row_ids, keys, -ranks))[:n]
    return Selection(row_ids[order], utilities[order])


def coarsen(utilities: np.ndarray) -> np.ndarray:
    """Return utilities with the 12 lowest mantissa bits cleared, for ordering only.

    BLAS kernels round differently for different batch shapes, so the same row
    scored in another batch can get a utility a few ulps away. Clearing the low
    bits (a relative step of 2**-40, about 9e-13) makes such values equal, so
    they tie and the seeded tie key decides, whatever the batching.
    """
    bits = np.ascontiguousarray(utilities, dtype=np.float64).view(np.int64)
    # NOTE: two values a few ulps apart can still straddle a step boundary. The
    # chance is about (ulps apart) / 4096 per pair, so a mismatch is rare, not impossible.
    return (bits & np.int64(~0xFFF)).view(np.float64)


def merge_selections(parts: list[Selection], n: int, seed: int) -> Selection:
    """Merge per-batch selections into the global top ``n``."""
    parts = [part for part in parts if len(part) > 0]
    if not parts:
        return empty_selection()
    return select_top_n(
        np.concatenate([part.row_ids for part in parts]),
        np.concatenate([part.utilities for part in parts]),
        n,
        seed,
    )
