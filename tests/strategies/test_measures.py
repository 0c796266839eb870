"""Uncertainty measures: hand-computed values, edge cases and input validation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies import entropy, least_confidence, margin
from al_ray.strategies.measures import as_probabilities

MEASURES = [least_confidence, margin, entropy]

LN2 = math.log(2)
LN3 = math.log(3)

# Rows shared by the hand-computed tables below.
TABLE_ROWS = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.5, 0.5, 0.0],
        [1.0, 0.0, 0.0],
        [1 / 3, 1 / 3, 1 / 3],
        [0.5, 0.25, 0.25],
        [0.0, 0.6, 0.4],
    ]
)


def test_least_confidence_table() -> None:
    expected = [
        0.3,  # 1 - 0.7
        0.5,  # 1 - 0.5
        0.0,  # 1 - 1
        2 / 3,  # 1 - 1/3, the maximum for three classes
        0.5,  # 1 - 0.5
        0.4,  # 1 - 0.6, and the zero in column 0 changes nothing
    ]
    np.testing.assert_allclose(least_confidence(TABLE_ROWS), expected, rtol=1e-12, atol=1e-15)


def test_margin_table() -> None:
    expected = [
        0.5,  # 1 - (0.7 - 0.2)
        1.0,  # 1 - (0.5 - 0.5): a tie between the two likeliest classes
        0.0,  # 1 - (1 - 0)
        1.0,  # 1 - (1/3 - 1/3)
        0.75,  # 1 - (0.5 - 0.25)
        0.8,  # 1 - (0.6 - 0.4), because the zero is the smallest, not the second
    ]
    np.testing.assert_allclose(margin(TABLE_ROWS), expected, rtol=1e-12, atol=1e-15)


def test_entropy_table() -> None:
    expected = [
        # -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1)
        -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)),
        LN2,  # -(2 * 0.5 ln 0.5) + 0 ln 0, with 0 ln 0 = 0
        0.0,  # -(1 ln 1) and two zero terms
        LN3,  # -(3 * 1/3 ln 1/3), the maximum for three classes
        1.5 * LN2,  # -(0.5 ln 0.5 + 2 * 0.25 ln 0.25) = 0.5 ln 2 + ln 2
        -(0.6 * math.log(0.6) + 0.4 * math.log(0.4)),
    ]
    np.testing.assert_allclose(entropy(TABLE_ROWS), expected, rtol=1e-12, atol=1e-15)


def test_entropy_nats_not_bits() -> None:
    # Two equally likely classes carry ln 2 = 0.693... nats, which would be 1 in bits.
    assert entropy(np.array([[0.5, 0.5, 0.0]]))[0] == pytest.approx(LN2, rel=1e-15)


@pytest.mark.parametrize("measure", MEASURES)
def test_measure_zero_probabilities_finite(measure) -> None:
    rows = np.array(
        [
            [0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.5, 0.5],
            [1e-300, 0.0, 1.0],
        ]
    )
    with np.errstate(all="raise"):
        utilities = measure(rows)
    assert utilities.shape == (4,)
    assert np.all(np.isfinite(utilities))


def test_measures_one_hot_rows_zero() -> None:
    # A certain prediction has no uncertainty under every measure.
    one_hot = np.eye(4)
    for measure in MEASURES:
        np.testing.assert_array_equal(measure(one_hot), np.zeros(4))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_measures_low_precision_exact(dtype) -> None:
    # 0.5 and 0.25 are exact in float16, so the values match float64 exactly.
    rows = np.array([[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]], dtype=dtype)
    np.testing.assert_allclose(least_confidence(rows), [0.5, 0.0], rtol=1e-15)
    np.testing.assert_allclose(margin(rows), [0.75, 0.0], rtol=1e-15)
    np.testing.assert_allclose(entropy(rows), [1.5 * LN2, 0.0], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_measures_low_precision_renormalised(dtype) -> None:
    # In float16 the row [0.7, 0.2, 0.1] sums to 1.000122, so it is renormalised.
    # The result stays within float16 precision of the float64 value.
    rows = np.array([[0.7, 0.2, 0.1]], dtype=dtype)
    exact = np.array([[0.7, 0.2, 0.1]])
    for measure in MEASURES:
        utilities = measure(rows)
        assert utilities.dtype == np.float64
        np.testing.assert_allclose(utilities, measure(exact), atol=2e-3)


def test_measures_float16_subnormal_row() -> None:
    # 2**-24 is the smallest float16 subnormal, and the row still normalises to [1, 0].
    rows = np.array([[2.0**-24, 0.0]], dtype=np.float16)
    for measure in MEASURES:
        np.testing.assert_array_equal(measure(rows), [0.0])


def test_measures_unnormalised_rows() -> None:
    # [3, 1, 0] normalises to [0.75, 0.25, 0].
    rows = np.array([[3.0, 1.0, 0.0]])
    assert least_confidence(rows)[0] == pytest.approx(0.25, rel=1e-15)
    assert margin(rows)[0] == pytest.approx(0.5, rel=1e-15)
    expected_entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert entropy(rows)[0] == pytest.approx(expected_entropy, rel=1e-15)


def test_measures_single_class_column() -> None:
    # With one class every row normalises to [1]: no uncertainty, whatever the value.
    rows = np.array([[1.0], [0.3], [1e-20]])
    for measure in MEASURES:
        np.testing.assert_array_equal(measure(rows), np.zeros(3))


def test_measures_empty_batch() -> None:
    for measure in MEASURES:
        utilities = measure(np.empty((0, 3), dtype=np.float32))
        assert utilities.shape == (0,)
        assert utilities.dtype == np.float64


def test_measures_input_not_mutated() -> None:
    rows = np.array([[3.0, 1.0, 0.0], [0.2, 0.2, 0.2]], dtype=np.float32)
    before = rows.copy()
    for measure in MEASURES:
        measure(rows)
    np.testing.assert_array_equal(rows, before)


def test_as_probabilities_returns_copy() -> None:
    rows = np.array([[0.5, 0.5]])
    normalised = as_probabilities(rows)
    normalised[0, 0] = 9.0
    assert rows[0, 0] == 0.5


@pytest.mark.parametrize("measure", MEASURES)
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.array([[0.5, np.nan]]), r"probabilities contain NaN or inf"),
        (np.array([[0.5, np.inf]]), r"probabilities contain NaN or inf"),
        (
            np.array([[1.1, -0.1]]),
            r"probabilities must be >= 0, got a minimum of -0\.1; "
            r"pass probabilities, not logits",
        ),
        (
            np.array([[0.5, 0.5], [0.0, 0.0]]),
            r"a row of probabilities sums to 0; every row needs some mass",
        ),
        (
            np.array([[1e308, 1e308]]),
            r"a row of probabilities sums to more than the float64 maximum",
        ),
        (
            np.array([0.5, 0.5]),
            r"probabilities must have shape \(n_rows, n_classes\), got \(2,\)",
        ),
        (
            np.ones((2, 2, 2)),
            r"probabilities must have shape \(n_rows, n_classes\), got \(2, 2, 2\)",
        ),
        (
            np.empty((3, 0)),
            r"probabilities have no class columns, got shape \(3, 0\)",
        ),
    ],
    ids=["nan", "inf", "negative", "zero_sum", "sum_overflow", "1d", "3d", "no_classes"],
)
def test_measure_rejects(measure, rows, message) -> None:
    with pytest.raises(StrategyError, match=message):
        measure(rows)


@st.composite
def probability_matrices(draw: st.DrawFn) -> np.ndarray:
    """Draw a valid probability matrix in float16/32/64, rows not always normalised."""
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    n_rows = draw(st.integers(1, 20))
    n_classes = draw(st.integers(1, 6))
    width = np.dtype(dtype).itemsize * 8
    elements = st.one_of(st.just(0.0), st.floats(0.0, 1.0, width=width))
    matrix = draw(hnp.arrays(dtype, (n_rows, n_classes), elements=elements))
    # A row of zeros is invalid input, so give such rows their mass in one column.
    zero_rows = matrix.astype(np.float64).sum(axis=1) == 0
    matrix[zero_rows, draw(st.integers(0, n_classes - 1))] = 1
    return matrix


@settings(deadline=None, max_examples=150)
@given(matrix=probability_matrices(), data=st.data())
def test_measures_bounds_and_symmetry(matrix: np.ndarray, data: st.DataObject) -> None:
    n_classes = matrix.shape[1]
    # Exact bounds: least confidence <= 1 - 1/k, margin <= 1, entropy <= ln k.
    upper = {
        least_confidence: 1.0 - 1.0 / n_classes,
        margin: 1.0,
        entropy: math.log(n_classes),
    }
    permutation = data.draw(st.permutations(range(n_classes)))
    for measure, bound in upper.items():
        utilities = measure(matrix)
        assert utilities.shape == (matrix.shape[0],)
        assert utilities.dtype == np.float64
        assert np.all(np.isfinite(utilities))
        assert np.all(utilities >= -1e-12)
        assert np.all(utilities <= bound + 1e-12)
        # The class order carries no meaning, so permuting columns changes nothing.
        permuted = measure(matrix[:, permutation])
        np.testing.assert_allclose(permuted, utilities, rtol=1e-12, atol=1e-12)
