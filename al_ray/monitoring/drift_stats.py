"""Two-sample statistics for drift: KS, chi-squared, PSI, and p-value corrections.

Every function takes plain numpy arrays and returns plain floats, so each can
be checked against values computed by hand. The drift detector decides which
one applies to which feature.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "PSI_EPSILON",
    "Bins",
    "adjust_p_values",
    "categorical_bins",
    "chi2_homogeneity",
    "ks_two_sample",
    "numeric_bins",
    "population_stability_index",
]

PSI_EPSILON = 1e-4
"""Share used in place of 0 for an empty bin, so the PSI stays finite."""


@dataclass(frozen=True)
class Bins:
    """A binning fixed on the reference and applied to any window.

    Numeric bins have ``edges`` and no ``categories``: a value ``x`` falls in
    bin ``searchsorted(edges, x, side="right")``, so the first bin contains
    every value below the first edge and the last bin every value at or above
    the last edge. Categorical bins have ``categories`` and one last bin for values
    the reference never took.
    """

    labels: tuple[str, ...]
    edges: np.ndarray | None = None
    categories: np.ndarray | None = None

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Return the number of ``values`` in each bin, shape ``(len(labels),)``."""
        if self.categories is None:
            index = np.searchsorted(self.edges, values, side="right")
        else:
            slots = np.minimum(np.searchsorted(self.categories, values), len(self.categories) - 1)
            known = self.categories[slots] == values
            index = np.where(known, slots, len(self.categories))
        return np.bincount(index, minlength=len(self.labels))

    def shares(self, values: np.ndarray) -> np.ndarray:
        """Return the share of ``values`` in each bin; shares sum to 1 for a non-empty array."""
        counts = self.counts(values)
        return counts / max(1, int(counts.sum()))


def numeric_bins(reference: np.ndarray, n_bins: int) -> Bins:
    """Build ``n_bins`` quantile bins of ``reference``, open-ended at both sides.

    Repeated quantiles merge, so a reference with few distinct values gets
    fewer bins. A constant reference ``c`` gets three bins: below ``c``,
    exactly ``c``, and above ``c``, so a window that moves off the constant
    lands outside the reference's bin.
    """
    low, high = float(np.min(reference)), float(np.max(reference))
    if low == high:
        edges = np.array([low, np.nextafter(low, np.inf)])
        labels = (f"< {low:.4g}", f"= {low:.4g}", f"> {low:.4g}")
        return Bins(labels=labels, edges=edges)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, n_bins + 1)[1:-1]))
    labels = [f"< {edges[0]:.4g}"]
    labels += [f"[{left:.4g}, {right:.4g})" for left, right in itertools.pairwise(edges)]
    labels.append(f">= {edges[-1]:.4g}")
    return Bins(labels=tuple(labels), edges=edges)


def categorical_bins(reference: np.ndarray) -> Bins:
    """Build one bin per distinct reference value plus one bin for values not in the reference."""
    categories = np.unique(reference)
    labels = [f"{value:g}" for value in categories.tolist()] + ["other"]
    return Bins(labels=tuple(labels), categories=categories)


def population_stability_index(reference_shares: np.ndarray, window_shares: np.ndarray) -> float:
    """Return the PSI, ``sum((w - r) * ln(w / r))`` over bins.

    A share of 0 counts as :data:`PSI_EPSILON`, so a bin that only the window
    fills adds a large but finite term. The index is 0 for equal shares. By the
    usual rule of thumb, below 0.1 is stable, 0.1 to 0.25 a moderate shift,
    and above 0.25 a major one.
    """
    reference = np.maximum(np.asarray(reference_shares, dtype=np.float64), PSI_EPSILON)
    window = np.maximum(np.asarray(window_shares, dtype=np.float64), PSI_EPSILON)
    return float(np.sum((window - reference) * np.log(window / reference)))


def ks_two_sample(reference: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """Return the two-sided Kolmogorov-Smirnov statistic and p-value of two samples.

    When both samples hold one and the same value, the statistic is 0 and the
    p-value 1 without calling scipy, so a feature that is constant in both
    windows never counts as drift. A reference that is constant while the
    window varies is tested as usual: that change is real drift.
    """
    if reference[0] == window[0] and np.all(reference == reference[0]) and np.all(window == window[0]):
        return 0.0, 1.0
    result = stats.ks_2samp(reference, window, alternative="two-sided", method="auto")
    return float(result.statistic), float(result.pvalue)


def chi2_homogeneity(reference_counts: np.ndarray, window_counts: np.ndarray) -> tuple[float, float]:
    """Return Pearson's chi-squared statistic and p-value for equal category shares in two samples.

    The test runs on the 2-by-k table of counts, leaving out categories that
    neither sample has and without Yates' continuity correction. With fewer
    than two categories left there is nothing to compare: statistic 0, p-value 1.
    """
    table = np.vstack([reference_counts, window_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(p_value)


def adjust_p_values(p_values: Sequence[float] | np.ndarray, method: str) -> np.ndarray:
    """Return p-values adjusted for testing ``m`` hypotheses at once.

    Methods: ``bonferroni`` multiplies each p-value by ``m``. ``holm`` (Holm,
    1979) multiplies the i-th smallest by ``m - i + 1`` and keeps the running
    maximum. ``fdr_bh`` (Benjamini and Hochberg, 1995) multiplies the i-th
    smallest by ``m / i`` and keeps the running minimum from the largest down.
    Results are capped at 1 and returned in the input order. A hypothesis is
    rejected when its adjusted p-value is at most the significance level.
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    if method == "bonferroni":
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    ranks = np.arange(1, m + 1)
    if method == "holm":
        adjusted_sorted = np.maximum.accumulate(np.minimum(1.0, (m - ranks + 1) * ranked))
    elif method == "fdr_bh":
        adjusted_sorted = np.minimum.accumulate(np.minimum(1.0, m / ranks * ranked)[::-1])[::-1]
    else:
        raise ValueError(f"unknown p-value correction {method!r}; choose holm, bonferroni or fdr_bh")
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = adjusted_sorted
    return adjusted
