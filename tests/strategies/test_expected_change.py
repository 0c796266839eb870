"""Expected gradient length and BADGE gradient embeddings: closed forms against brute force."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies.expected_change import (
    expected_gradient_length,
    gradient_embedding_factors,
    gradient_embedding_sq_distances,
)
from al_ray.strategies.measures import as_probabilities

SQRT2 = math.sqrt(2)


def brute_force_egl(probabilities: np.ndarray, embeddings: np.ndarray, include_bias: bool) -> np.ndarray:
    """Sum p_y * ||(p - e_y) ⊗ h||_F over y, building every outer product."""
    p = as_probabilities(probabilities)
    h = np.asarray(embeddings, dtype=np.float64)
    if include_bias:
        h = np.hstack([h, np.ones((h.shape[0], 1))])
    identity = np.eye(p.shape[1])
    lengths = np.zeros(p.shape[0])
    for i in range(p.shape[0]):
        for y in range(p.shape[1]):
            lengths[i] += p[i, y] * np.linalg.norm(np.outer(p[i] - identity[y], h[i]))
    return lengths


def brute_force_sq_distances(
    a_rows: np.ndarray, h_rows: np.ndarray, a_centers: np.ndarray, h_centers: np.ndarray
) -> np.ndarray:
    """Squared distances between the explicit flattened outer products a ⊗ h."""
    rows = np.array([np.outer(a, h).ravel() for a, h in zip(a_rows, h_rows)])
    centers = np.array([np.outer(a, h).ravel() for a, h in zip(a_centers, h_centers)])
    return ((rows[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)


def test_egl_two_class_hand() -> None:
    # p = (0.8, 0.2), h = (3, 4) with ||h|| = 5.
    # ||p - e_0|| = ||(-0.2, 0.2)|| = 0.2 sqrt 2, ||p - e_1|| = ||(0.8, -0.8)|| = 0.8 sqrt 2.
    # EGL = (0.8 * 0.2 sqrt 2 + 0.2 * 0.8 sqrt 2) * 5 = 0.32 sqrt 2 * 5 = 1.6 sqrt 2.
    probabilities = np.array([[0.8, 0.2]])
    embeddings = np.array([[3.0, 4.0]])
    assert expected_gradient_length(probabilities, embeddings, include_bias=False)[0] == (
        pytest.approx(1.6 * SQRT2, rel=1e-14)
    )
    # With a bias the input norm is sqrt(3^2 + 4^2 + 1^2) = sqrt 26.
    assert expected_gradient_length(probabilities, embeddings)[0] == pytest.approx(
        0.32 * SQRT2 * math.sqrt(26), rel=1e-14
    )


def test_egl_three_class_table() -> None:
    probabilities = np.array(
        [
            [0.5, 0.5, 0.0],
            [1.0, 0.0, 0.0],
            [1 / 3, 1 / 3, 1 / 3],
        ]
    )
    embeddings = np.array([[1.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    expected = [
        # ||p - e_0|| = ||p - e_1|| = ||(0.5, -0.5, 0)|| = sqrt 0.5, and class 2 has weight 0.
        # (0.5 + 0.5) * sqrt 0.5 * ||(1, 0)|| = sqrt 0.5.
        math.sqrt(0.5),
        # A one-hot prediction: the expected gradient is 0 whatever h is.
        0.0,
        # ||p - e_y|| = ||(-2/3, 1/3, 1/3)|| = sqrt(6/9) for every y, and ||h|| = 2.
        math.sqrt(6 / 9) * 2.0,
    ]
    np.testing.assert_allclose(
        expected_gradient_length(probabilities, embeddings, include_bias=False),
        expected,
        rtol=1e-14,
        atol=1e-300,
    )


def test_egl_default_includes_bias() -> None:
    probabilities = np.array([[0.8, 0.2]])
    embeddings = np.array([[3.0, 4.0]])
    np.testing.assert_array_equal(
        expected_gradient_length(probabilities, embeddings),
        expected_gradient_length(probabilities, embeddings, include_bias=True),
    )


@pytest.mark.parametrize("q", [1e-12, 1e-20])
def test_egl_near_certain_precision(q: float) -> None:
    # Two classes p = (1 - q, q): ||p - e_0|| = sqrt 2 q and ||p - e_1|| = sqrt 2 (1 - q),
    # so EGL / ||h|| = 2 sqrt 2 q (1 - q). For q = 1e-20, 1 - q rounds to 1, and
    # computing 1 - p_0 directly would give ||p - e_0|| = q instead of sqrt 2 q.
    probabilities = np.array([[1.0 - q, q]])
    lengths = expected_gradient_length(probabilities, np.array([[1.0]]), include_bias=False)
    assert lengths[0] == pytest.approx(2 * SQRT2 * q * (1 - q), rel=1e-9)


def test_egl_one_hot_zero() -> None:
    embeddings = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.testing.assert_array_equal(expected_gradient_length(np.eye(4), embeddings), np.zeros(4))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_egl_low_precision_inputs(dtype) -> None:
    # 0.75, 0.25, 3 and 4 are exact in float16, so the value matches float64.
    probabilities = np.array([[0.75, 0.25]], dtype=dtype)
    embeddings = np.array([[3.0, 4.0]], dtype=dtype)
    lengths = expected_gradient_length(probabilities, embeddings, include_bias=False)
    assert lengths.dtype == np.float64
    # 2 sqrt 2 * 0.75 * 0.25 * 5
    assert lengths[0] == pytest.approx(2 * SQRT2 * 0.75 * 0.25 * 5, rel=1e-14)


def test_egl_large_embeddings_no_overflow() -> None:
    # Squaring 1e200 overflows float64, but the norm 1e200 * sqrt 2 does not.
    lengths = expected_gradient_length(
        np.array([[0.5, 0.5]]), np.array([[1e200, 1e200]]), include_bias=False
    )
    # (0.5 + 0.5) * sqrt 0.5 * sqrt 2 * 1e200
    assert lengths[0] == pytest.approx(1e200, rel=1e-12)


def test_egl_input_not_mutated() -> None:
    probabilities = np.array([[3.0, 1.0], [0.2, 0.2]], dtype=np.float32)
    embeddings = np.array([[1.0, -2.0], [0.5, 0.0]], dtype=np.float32)
    probabilities_before = probabilities.copy()
    embeddings_before = embeddings.copy()
    expected_gradient_length(probabilities, embeddings)
    gradient_embedding_factors(probabilities)
    np.testing.assert_array_equal(probabilities, probabilities_before)
    np.testing.assert_array_equal(embeddings, embeddings_before)


def test_egl_empty_batch() -> None:
    lengths = expected_gradient_length(np.empty((0, 3)), np.empty((0, 4), dtype=np.float32))
    assert lengths.shape == (0,)
    assert lengths.dtype == np.float64


@pytest.mark.parametrize(
    ("probabilities", "embeddings", "message"),
    [
        (
            np.array([[0.5, 0.5], [1.0, 0.0]]),
            np.ones((3, 2)),
            r"embeddings have 3 rows but probabilities have 2; pass both for the same rows",
        ),
        (
            np.array([[0.5, 0.5]]),
            np.ones(2),
            r"embeddings must have shape \(n_rows, d\), got \(2,\)",
        ),
        (
            np.array([[0.5, 0.5]]),
            np.array([[1.0, np.nan]]),
            r"embeddings contain NaN or inf \(row 0\)",
        ),
        (
            np.array([[0.5, 0.5]]),
            np.empty((1, 0)),
            r"embeddings have no columns, got shape \(1, 0\)",
        ),
        (
            np.array([[0.5, 0.5]]),
            np.array([[1.7e308, 1.7e308]]),
            r"an embedding's norm overflows float64; rescale the embeddings",
        ),
        (
            np.array([[0.5, -0.5]]),
            np.ones((1, 2)),
            r"probabilities must be >= 0, got a minimum of -0\.5",
        ),
    ],
    ids=["row_mismatch", "1d_embeddings", "nan", "no_columns", "norm_overflow", "negative"],
)
def test_egl_rejects(probabilities, embeddings, message) -> None:
    with pytest.raises(StrategyError, match=message):
        expected_gradient_length(probabilities, embeddings)


@st.composite
def probabilities_and_embeddings(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Draw a valid probability matrix and embeddings of the same row count."""
    n_rows = draw(st.integers(1, 6))
    n_classes = draw(st.integers(1, 5))
    dimension = draw(st.integers(1, 4))
    elements = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0))
    probabilities = draw(hnp.arrays(np.float64, (n_rows, n_classes), elements=elements))
    # A row of zeros is invalid input, so give such rows their mass in one column.
    probabilities[probabilities.sum(axis=1) == 0, 0] = 1.0
    embeddings = draw(
        hnp.arrays(np.float64, (n_rows, dimension), elements=st.floats(-10.0, 10.0))
    )
    return probabilities, embeddings


@settings(deadline=None, max_examples=100)
@given(inputs=probabilities_and_embeddings(), include_bias=st.booleans())
def test_egl_equals_brute_force(inputs: tuple[np.ndarray, np.ndarray], include_bias: bool) -> None:
    probabilities, embeddings = inputs
    lengths = expected_gradient_length(probabilities, embeddings, include_bias=include_bias)
    expected = brute_force_egl(probabilities, embeddings, include_bias)
    np.testing.assert_allclose(lengths, expected, rtol=1e-10, atol=1e-12)


def test_factors_table() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25], [0.5, 0.5, 0.0]])
    factors, yhat = gradient_embedding_factors(probabilities)
    np.testing.assert_array_equal(yhat, [0, 1, 0])  # the tie in row 2 goes to class 0
    np.testing.assert_allclose(
        factors,
        [
            [0.7 - 1, 0.2, 0.1],
            [0.25, 0.5 - 1, 0.25],
            [0.5 - 1, 0.5, 0.0],
        ],
        rtol=1e-14,
    )
    assert factors.dtype == np.float64


def test_factors_near_certain_row() -> None:
    # 1 - 1e-20 rounds to 1, but the factor at yhat is -(sum of the others) = -1e-20, not 0.
    factors, yhat = gradient_embedding_factors(np.array([[1.0, 1e-20]]))
    assert yhat[0] == 0
    assert factors[0, 0] == -1e-20
    assert factors[0, 1] == 1e-20


def test_factors_empty_batch() -> None:
    factors, yhat = gradient_embedding_factors(np.empty((0, 3), dtype=np.float32))
    assert factors.shape == (0, 3)
    assert factors.dtype == np.float64
    assert yhat.shape == (0,)


def test_factors_gradient_length() -> None:
    # ||a|| * ||h|| is the length of the gradient for the predicted label, the
    # y = yhat term of expected_gradient_length before weighting by p_yhat.
    probabilities = np.array([[0.8, 0.2]])
    factors, _ = gradient_embedding_factors(probabilities)
    assert np.linalg.norm(factors[0]) == pytest.approx(0.2 * SQRT2, rel=1e-14)


def test_sq_distances_hand() -> None:
    a_rows = np.array([[-0.3, 0.2, 0.1]])
    h_rows = np.array([[1.0, 2.0]])
    a_centers = np.array([[0.5, -0.5, 0.0], [-0.3, 0.2, 0.1]])
    h_centers = np.array([[2.0, 0.0], [1.0, 2.0]])
    # ||a_1||^2 ||h_1||^2 = (0.09 + 0.04 + 0.01) * 5 = 0.7
    # ||a_2||^2 ||h_2||^2 = 0.5 * 4 = 2
    # (a_1 . a_2)(h_1 . h_2) = (-0.15 - 0.1 + 0) * 2 = -0.5
    # distance^2 = 0.7 + 2 - 2 * (-0.5) = 3.7. The second center equals the row: 0.
    distances = gradient_embedding_sq_distances(a_rows, h_rows, a_centers, h_centers)
    assert distances.shape == (1, 2)
    assert distances.dtype == np.float64
    assert distances[0, 0] == pytest.approx(3.7, rel=1e-14)
    assert distances[0, 1] == pytest.approx(0.0, abs=1e-15)
    assert distances[0, 1] >= 0.0


def test_sq_distances_self_not_negative() -> None:
    # Cancellation on identical embeddings can leave values below 0, which are clipped.
    rng = np.random.default_rng(7)
    a = rng.normal(size=(20, 4))
    h = rng.normal(size=(20, 6)) * 1e3
    distances = gradient_embedding_sq_distances(a, h, a, h)
    assert np.all(distances >= 0.0)
    np.testing.assert_allclose(np.diag(distances), np.zeros(20), atol=1e-6)


def test_sq_distances_low_precision_inputs() -> None:
    a = np.array([[-0.5, 0.5]], dtype=np.float16)
    h = np.array([[2.0, 0.0]], dtype=np.float32)
    zero = np.zeros((1, 2), dtype=np.float16)
    # ||a ⊗ h||^2 = 0.5 * 4 = 2 from the zero embedding.
    distances = gradient_embedding_sq_distances(a, h, zero, h)
    assert distances.dtype == np.float64
    assert distances[0, 0] == 2.0


def test_sq_distances_no_centers() -> None:
    distances = gradient_embedding_sq_distances(
        np.ones((3, 2)), np.ones((3, 4)), np.empty((0, 2)), np.empty((0, 4))
    )
    assert distances.shape == (3, 0)


@settings(deadline=None, max_examples=100)
@given(data=st.data())
def test_sq_distances_equal_brute_force(data: st.DataObject) -> None:
    n_rows = data.draw(st.integers(1, 6))
    n_centers = data.draw(st.integers(1, 5))
    n_classes = data.draw(st.integers(1, 4))
    dimension = data.draw(st.integers(1, 4))
    factor_values = st.floats(-1.0, 1.0)
    embedding_values = st.floats(-10.0, 10.0)
    a_rows = data.draw(hnp.arrays(np.float64, (n_rows, n_classes), elements=factor_values))
    h_rows = data.draw(hnp.arrays(np.float64, (n_rows, dimension), elements=embedding_values))
    a_centers = data.draw(hnp.arrays(np.float64, (n_centers, n_classes), elements=factor_values))
    h_centers = data.draw(
        hnp.arrays(np.float64, (n_centers, dimension), elements=embedding_values)
    )
    distances = gradient_embedding_sq_distances(a_rows, h_rows, a_centers, h_centers)
    expected = brute_force_sq_distances(a_rows, h_rows, a_centers, h_centers)
    assert distances.shape == (n_rows, n_centers)
    # The factorised form cancels terms of size up to ||g||^2 <= 1600, so compare
    # with an absolute tolerance a few hundred ulps of that size.
    np.testing.assert_allclose(distances, expected, rtol=1e-10, atol=1e-10)


@settings(deadline=None, max_examples=50)
@given(inputs=probabilities_and_embeddings())
def test_sq_distances_from_factors(inputs: tuple[np.ndarray, np.ndarray]) -> None:
    # The factors of real probabilities, rows against themselves as centers.
    probabilities, embeddings = inputs
    factors, _ = gradient_embedding_factors(probabilities)
    distances = gradient_embedding_sq_distances(factors, embeddings, factors, embeddings)
    expected = brute_force_sq_distances(factors, embeddings, factors, embeddings)
    np.testing.assert_allclose(distances, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("shapes", "message"),
    [
        (
            ((2, 3), (3, 4), (1, 3), (1, 4)),
            r"a_rows has 2 rows but h_rows has 3; pass both factors of the same rows",
        ),
        (
            ((2, 3), (2, 4), (1, 3), (2, 4)),
            r"a_centers has 1 rows but h_centers has 2; pass both factors of the same centers",
        ),
        (
            ((2, 3), (2, 4), (1, 2), (1, 4)),
            r"a_rows has 3 class columns but a_centers has 2; both must come from the same model",
        ),
        (
            ((2, 3), (2, 4), (1, 3), (1, 5)),
            r"h_rows has 4 columns but h_centers has 5; both must come from the same embedding",
        ),
        (
            ((3,), (2, 4), (1, 3), (1, 4)),
            r"a_rows must have shape \(n_rows, n_classes\), got \(3,\)",
        ),
        (
            ((2, 3), (2, 4), (1, 3), (1, 4, 1)),
            r"h_centers must have shape \(n_centers, d\), got \(1, 4, 1\)",
        ),
    ],
    ids=["row_factors", "center_factors", "classes", "dimension", "1d", "3d"],
)
def test_sq_distances_rejects_shapes(shapes, message) -> None:
    arrays = [np.ones(shape) for shape in shapes]
    with pytest.raises(StrategyError, match=message):
        gradient_embedding_sq_distances(*arrays)


def test_sq_distances_rejects_values() -> None:
    ones = np.ones((1, 2))
    with pytest.raises(StrategyError, match=r"h_rows contain NaN or inf \(row 0\)"):
        gradient_embedding_sq_distances(ones, np.array([[np.inf, 0.0]]), ones, ones)
    huge = np.full((1, 2), 1e200)
    with pytest.raises(
        StrategyError, match=r"a squared gradient-embedding distance overflows float64"
    ):
        gradient_embedding_sq_distances(ones, huge, ones, ones)
