"""Information density: hand-computed weights, clipping, chunking and input checks."""

import math

import numpy as np
import pytest
from sklearn.metrics.pairwise import cosine_similarity

from al_ray.errors import StrategyError
from al_ray.strategies.diversity import information_density

SQRT_HALF = math.sqrt(0.5)

FEATURES = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
REFERENCE = np.array([[1.0, 0.0], [1.0, 1.0]])
UTILITIES = np.array([1.0, 2.0, 3.0])


def test_density_hand_beta_one() -> None:
    expected = [
        1.0 * (1.0 + SQRT_HALF) / 2,  # cos to [1, 0] is 1, to [1, 1] is 1/sqrt(2)
        2.0 * (0.0 + SQRT_HALF) / 2,  # cos to [1, 0] is 0, to [1, 1] is 1/sqrt(2)
        0.0,  # a zero vector has similarity 0 to everything
    ]
    got = information_density(UTILITIES, FEATURES, REFERENCE)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert got.dtype == np.float64


def test_density_hand_beta_two() -> None:
    expected = [
        1.0 * ((1.0 + SQRT_HALF) / 2) ** 2,
        2.0 * (SQRT_HALF / 2) ** 2,  # 2 * 1/8
        0.0,
    ]
    got = information_density(UTILITIES, FEATURES, REFERENCE, beta=2.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_density_beta_zero_keeps_utilities() -> None:
    # 0 ** 0 = 1, so even the zero row keeps its utility.
    got = information_density(UTILITIES, FEATURES, REFERENCE, beta=0.0)
    assert got.tolist() == UTILITIES.tolist()


def test_density_negative_similarity_clipped() -> None:
    features = np.array([[-1.0, 0.0], [-1.0, 1.0]])
    reference = np.array([[1.0, 0.0], [1.0, 0.0]])
    # Mean cosines: -1 and -1/sqrt(2), both clipped to 0.
    got = information_density(np.array([5.0, 5.0]), features, reference, beta=0.5)
    assert got.tolist() == [0.0, 0.0]


def test_density_zero_reference_row_counts() -> None:
    reference = np.array([[1.0, 0.0], [0.0, 0.0]])
    # cos([1, 0], [1, 0]) = 1 and similarity to a zero row is 0: the mean is 1/2.
    got = information_density(np.array([1.0]), np.array([[2.0, 0.0]]), reference)
    assert got.tolist() == [0.5]


def test_density_matches_pairwise_cosine() -> None:
    rng = np.random.default_rng(0)
    features = rng.standard_normal((37, 5)) + 0.5
    reference = rng.standard_normal((11, 5)) + 0.5
    utilities = rng.random(37)
    mean_similarity = cosine_similarity(features, reference).mean(axis=1)
    expected = utilities * np.clip(mean_similarity, 0.0, 1.0) ** 1.5
    got = information_density(utilities, features, reference, beta=1.5, chunk_rows=4)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_density_float32_input() -> None:
    rng = np.random.default_rng(1)
    features = rng.standard_normal((20, 3)).astype(np.float32)
    reference = rng.standard_normal((6, 3)).astype(np.float32)
    utilities = rng.random(20)
    expected = information_density(utilities, features.astype(np.float64), reference.astype(np.float64))
    got = information_density(utilities, features, reference)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(got))


def test_density_no_candidates() -> None:
    got = information_density(np.empty(0), np.empty((0, 2)), REFERENCE)
    assert got.shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": -0.5}, r"beta must be a finite number >= 0, got -0.5"),
        ({"beta": math.inf}, r"beta must be a finite number >= 0, got inf"),
        ({"beta": math.nan}, r"beta must be a finite number >= 0, got nan"),
        ({"beta": "1"}, r"beta must be a finite number >= 0, got '1'"),
        ({"chunk_rows": 0}, r"chunk_rows must be an integer >= 1, got 0"),
        ({"reference": np.empty((0, 2))}, r"reference has no rows; pass at least one row"),
        ({"reference": np.ones((2, 3))}, r"reference must have the features' 2 columns, got shape \(2, 3\)"),
        ({"utilities": np.ones(2)}, r"utilities must have shape \(3,\), one value per candidate, got \(2,\)"),
        (
            {"utilities": np.array([1.0, np.inf, 0.0])},
            r"utilities must be finite; positions \[1\] hold NaN or inf",
        ),
        (
            {"features": np.array([[1.0, 0.0], [np.nan, 1.0], [0.0, 0.0]])},
            r"features has NaN, inf or values too large to square in float64 at positions \[1\]",
        ),
    ],
)
def test_density_invalid_input(kwargs: dict, message: str) -> None:
    arguments = {"utilities": UTILITIES, "features": FEATURES, "reference": REFERENCE}
    arguments.update(kwargs)
    with pytest.raises(StrategyError, match=message):
        information_density(
            arguments.pop("utilities"),
            arguments.pop("features"),
            arguments.pop("reference"),
            **arguments,
        )
