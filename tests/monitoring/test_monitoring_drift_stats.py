"""Drift statistics against values computed by hand: KS, chi-squared, PSI, corrections."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import false_discovery_control

from al_ray.monitoring.drift_stats import (
    PSI_EPSILON,
    adjust_p_values,
    categorical_bins,
    chi2_homogeneity,
    ks_two_sample,
    numeric_bins,
    population_stability_index,
)


def _ks_statistic(a: list[float], b: list[float]) -> float:
    points = sorted(set(a) | set(b))
    return max(abs(sum(x <= t for x in a) / len(a) - sum(x <= t for x in b) / len(b)) for t in points)


def test_ks_statistic_and_exact_p_by_enumeration():
    reference, window = [1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0]
    # ECDF gaps at 2, 3 and 4 are all 0.5.
    observed = 0.5
    # Exact permutation p-value: the share of the C(8, 4) = 70 ways to split the
    # pooled values into two groups of 4 whose statistic is at least 0.5.
    pooled = reference + window
    splits = list(itertools.combinations(range(8), 4))
    extreme = 0
    for chosen in splits:
        first = [pooled[i] for i in chosen]
        second = [pooled[i] for i in range(8) if i not in chosen]
        extreme += _ks_statistic(first, second) >= observed - 1e-12

    statistic, p_value = ks_two_sample(np.array(reference), np.array(window))

    assert statistic == observed
    assert extreme == 54
    assert p_value == pytest.approx(extreme / len(splits), abs=1e-12)


def test_ks_disjoint_samples():
    # Two samples of 3 with no overlap: 2 of the C(6, 3) = 20 splits separate them fully.
    statistic, p_value = ks_two_sample(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))

    assert statistic == 1.0
    assert p_value == pytest.approx(2 / 20)


def test_ks_both_constant_same_value():
    statistic, p_value = ks_two_sample(np.full(50, 0.25), np.full(10, 0.25))

    assert (statistic, p_value) == (0.0, 1.0)


def test_ks_constant_reference_varying_window():
    # Half the window differs from the constant: D is that share.
    statistic, _ = ks_two_sample(np.full(40, 1.0), np.array([1.0] * 20 + [2.0] * 20))

    assert statistic == pytest.approx(0.5)


def test_chi2_two_by_two_by_hand():
    # Table [[30, 10], [10, 30]]: every expected count is 20, so chi2 = 4 * 10**2 / 20 = 20.
    # With 1 degree of freedom the tail is erfc(sqrt(chi2 / 2)).
    statistic, p_value = chi2_homogeneity(np.array([30, 10]), np.array([10, 30]))

    assert statistic == pytest.approx(20.0)
    assert p_value == pytest.approx(math.erfc(math.sqrt(10.0)), rel=1e-9)


def test_chi2_drops_empty_categories_and_single_category():
    with_empty = chi2_homogeneity(np.array([30, 0, 10]), np.array([10, 0, 30]))

    assert with_empty[0] == pytest.approx(20.0)
    assert chi2_homogeneity(np.array([5, 0]), np.array([7, 0])) == (0.0, 1.0)


def test_psi_by_hand():
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = 0.25 * math.log(2) + 0.25 * math.log(1.5)

    assert population_stability_index(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(expected)
    assert population_stability_index(np.array([0.2, 0.8]), np.array([0.2, 0.8])) == 0.0


def test_psi_empty_bin_uses_epsilon():
    expected = (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON) + (0.5 - 1.0) * math.log(0.5)

    assert population_stability_index(np.array([0.0, 1.0]), np.array([0.5, 0.5])) == pytest.approx(expected)


def test_numeric_bins_quantiles_on_tiny_reference():
    bins = numeric_bins(np.array([1.0, 2.0, 3.0, 4.0]), n_bins=2)

    # The median of the reference, 2.5, is the one edge.
    np.testing.assert_array_equal(bins.edges, [2.5])
    np.testing.assert_array_equal(bins.counts(np.array([1.0, 3.0, 4.0, 5.0])), [1, 3])
    reference = bins.shares(np.array([1.0, 2.0, 3.0, 4.0]))
    window = bins.shares(np.array([1.0, 3.0, 4.0, 5.0]))
    assert population_stability_index(reference, window) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5))


def test_numeric_bins_constant_reference():
    bins = numeric_bins(np.full(5, 2.0), n_bins=10)

    assert bins.labels == ("< 2", "= 2", "> 2")
    np.testing.assert_array_equal(bins.counts(np.array([1.0, 2.0, 2.0, 3.0])), [1, 2, 1])


def test_categorical_bins_other_bin():
    bins = categorical_bins(np.array([1.0, 2.0, 2.0, 7.0]))

    assert bins.labels == ("1", "2", "7", "other")
    np.testing.assert_array_equal(bins.counts(np.array([0.0, 1.0, 2.0, 7.0, 8.0, 9.0])), [1, 1, 1, 3])


P_VALUES = [0.01, 0.04, 0.03, 0.20]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # p * m, capped at 1.
        ("bonferroni", [0.04, 0.16, 0.12, 0.80]),
        # Sorted 0.01, 0.03, 0.04, 0.20 times 4, 3, 2, 1: 0.04, 0.09, 0.08, 0.20; running max 0.04, 0.09, 0.09, 0.20.
        ("holm", [0.04, 0.09, 0.09, 0.20]),
        # Sorted times 4/1, 4/2, 4/3, 4/4: 0.04, 0.06, 0.0533, 0.20; running min from the top: 0.04, 0.0533, 0.0533, 0.20.
        ("fdr_bh", [0.04, 0.2 / 3.75, 0.2 / 3.75, 0.20]),
    ],
)
def test_corrections_by_hand(method, expected):
    np.testing.assert_allclose(adjust_p_values(P_VALUES, method), expected, rtol=1e-12)


def test_bh_matches_scipy():
    rng = np.random.default_rng(4)
    p_values = rng.uniform(size=40) ** 3

    np.testing.assert_allclose(adjust_p_values(p_values, "fdr_bh"), false_discovery_control(p_values), rtol=1e-12)


def test_correction_unknown_method():
    with pytest.raises(ValueError, match="unknown p-value correction 'sidak'; choose holm, bonferroni or fdr_bh"):
        adjust_p_values([0.1, 0.2], "sidak")


def test_correction_empty():
    assert adjust_p_values([], "holm").size == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12))
def test_correction_order_invariants(p_values):
    raw = np.array(p_values)
    bonferroni = adjust_p_values(raw, "bonferroni")
    holm = adjust_p_values(raw, "holm")
    bh = adjust_p_values(raw, "fdr_bh")

    # Every adjustment keeps p-values in [raw, 1]. Holm is never above Bonferroni, and BH never above Holm.
    for adjusted in (bonferroni, holm, bh):
        assert np.all(adjusted >= raw - 1e-12)
        assert np.all(adjusted <= 1.0)
    assert np.all(holm <= bonferroni + 1e-12)
    assert np.all(bh <= holm + 1e-12)
    # A smaller raw p-value never gets a larger adjusted one.
    order = np.argsort(raw, kind="stable")
    for adjusted in (bonferroni, holm, bh):
        assert np.all(np.diff(adjusted[order]) >= -1e-12)
