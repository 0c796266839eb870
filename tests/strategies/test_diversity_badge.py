"""BADGE: factorized distances, D² sampling, duplicates, seeds and memory."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies.diversity import badge_select
from al_ray.strategies.diversity_badge import _squared_distances_to_row


def explicit_gradients(factors: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Form g_i = a_i ⊗ h_i row by row, shape (m, K * d): only for small inputs."""
    return np.einsum("ik,id->ikd", factors, embeddings).reshape(len(factors), -1)


def reference_badge(factors: np.ndarray, embeddings: np.ndarray, n: int, seed: int) -> list[int]:
    """k-means++ seeding on explicit gradient embeddings, drawing as badge_select does."""
    gradients = explicit_gradients(factors, embeddings)
    rng = np.random.default_rng(seed)
    picks = [int(np.argmax((gradients**2).sum(axis=1)))]
    nearest = np.full(len(gradients), np.inf)
    while len(picks) < n:
        to_pick = ((gradients - gradients[picks[-1]]) ** 2).sum(axis=1)
        nearest = np.minimum(nearest, to_pick)
        nearest[picks] = 0.0
        picks.append(int(rng.choice(len(gradients), p=nearest / nearest.sum())))
    return picks


def test_badge_factorized_distances_match_explicit() -> None:
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((40, 5))
    embeddings = rng.standard_normal((40, 7))
    gradients = explicit_gradients(factors, embeddings)
    gradient_norms = (gradients**2).sum(axis=1)
    for center in (0, 17, 39):
        expected = ((gradients - gradients[center]) ** 2).sum(axis=1)
        got = _squared_distances_to_row(factors, embeddings, gradient_norms, center, 12)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
        assert got[center] == 0.0


def test_badge_picks_match_explicit_reference() -> None:
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(4), size=80)
    factors = probabilities - np.eye(4)[probabilities.argmax(axis=1)]
    embeddings = rng.standard_normal((80, 6))
    for seed in (0, 5, 123):
        picks = badge_select(factors, embeddings, 12, seed)
        assert picks.tolist() == reference_badge(factors, embeddings, 12, seed)


def test_badge_first_pick_largest_gradient() -> None:
    factors = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    embeddings = np.array([[3.0], [1.0], [2.0]])
    # |g|^2 = |a|^2 |h|^2: 1 * 9 = 9, 4 * 1 = 4, 2 * 4 = 8, so row 0.
    assert badge_select(factors, embeddings, 1, seed=0).tolist() == [0]


def test_badge_first_pick_tie_lowest_position() -> None:
    factors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    embeddings = np.array([[1.0], [1.0], [0.5]])
    # |g|^2: 1, 1 and 0.25; the tie between rows 0 and 1 goes to row 0.
    assert badge_select(factors, embeddings, 1, seed=0).tolist() == [0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_badge_duplicates_distinct_then_by_norm(dtype: type) -> None:
    rng = np.random.default_rng(2)
    factors = np.repeat(rng.standard_normal((3, 4)), 10, axis=0).astype(dtype)
    embeddings = np.repeat(rng.standard_normal((3, 5)), 10, axis=0).astype(dtype)
    norms = (factors.astype(np.float64) ** 2).sum(axis=1) * (embeddings.astype(np.float64) ** 2).sum(axis=1)
    picks = badge_select(factors, embeddings, 30, seed=4)
    assert sorted(picks.tolist()) == list(range(30))
    # The three distinct rows come first, one per group of copies; after that
    # every D^2 is 0 and the rest follow by |g| descending, then position.
    assert len({int(p) // 10 for p in picks[:3]}) == 3
    rest = [int(p) for p in picks[3:]]
    assert rest == sorted(rest, key=lambda p: (-norms[p], p))


def test_badge_zero_factors_in_position_order() -> None:
    # Confident predictions give a = 0, so every gradient embedding is 0.
    factors = np.zeros((8, 3))
    embeddings = np.random.default_rng(0).standard_normal((8, 4))
    assert badge_select(factors, embeddings, 5, seed=9).tolist() == [0, 1, 2, 3, 4]


def test_badge_same_seed_same_picks() -> None:
    rng = np.random.default_rng(3)
    factors = rng.standard_normal((300, 10))
    embeddings = rng.standard_normal((300, 16))
    first = badge_select(factors, embeddings, 25, seed=11)
    second = badge_select(factors, embeddings, 25, seed=11)
    assert first.tolist() == second.tolist()


def test_badge_seed_changes_picks() -> None:
    rng = np.random.default_rng(3)
    factors = rng.standard_normal((300, 10))
    embeddings = rng.standard_normal((300, 16))
    first = badge_select(factors, embeddings, 25, seed=11)
    other = badge_select(factors, embeddings, 25, seed=12)
    # Both start at the largest |g|; the draws after it differ.
    assert first[0] == other[0]
    assert first.tolist() != other.tolist()


def test_badge_chunk_rows_and_dtype_invariant() -> None:
    rng = np.random.default_rng(4)
    factors = rng.standard_normal((50, 3)).astype(np.float32)
    embeddings = rng.standard_normal((50, 6)).astype(np.float32)
    expected = badge_select(factors.astype(np.float64), embeddings.astype(np.float64), 10, 7)
    assert badge_select(factors, embeddings, 10, 7, chunk_rows=3).tolist() == expected.tolist()


def test_badge_float32_near_duplicates_rechecked() -> None:
    # Row 0 (picked first, the largest |g|) and its exact copy in row 2 differ
    # from row 1 by 1e-3 in one of 300 embedding columns: a squared distance of
    # about 1e-6, below float32's rounding bound for 300 terms at |g|^2 = 300
    # (about 300 * 1.2e-7 * 600 = 0.02) but far above float64's. The float64
    # recheck keeps row 1 positive, so it is drawn before row 2 at D^2 = 0.
    embeddings = np.ones((3, 300), dtype=np.float32)
    embeddings[[0, 2], 0] += np.float32(1e-3)
    factors = np.ones((3, 1), dtype=np.float32)
    picks = badge_select(factors, embeddings, 3, seed=0)
    assert picks.tolist() == [0, 1, 2]
    assert picks.tolist() == badge_select(factors.astype(np.float64), embeddings.astype(np.float64), 3, 0).tolist()


def test_badge_float32_large_norms_use_float64() -> None:
    # |h|^2 of about 4e38 would overflow a float32 dot product (max 3.4e38).
    rng = np.random.default_rng(6)
    factors = rng.standard_normal((40, 3)).astype(np.float32)
    embeddings = (rng.standard_normal((40, 4)) * 1e19).astype(np.float32)
    picks = badge_select(factors, embeddings, 8, seed=1)
    expected = badge_select(factors.astype(np.float64), embeddings.astype(np.float64), 8, seed=1)
    assert picks.tolist() == expected.tolist()


def test_badge_n_above_m() -> None:
    rng = np.random.default_rng(5)
    picks = badge_select(rng.standard_normal((6, 2)), rng.standard_normal((6, 3)), 50, seed=0)
    assert sorted(picks.tolist()) == list(range(6))


def test_badge_n_zero_and_no_rows() -> None:
    assert badge_select(np.ones((4, 2)), np.ones((4, 3)), 0, seed=0).shape == (0,)
    empty = badge_select(np.empty((0, 2)), np.empty((0, 3)), 5, seed=0)
    assert empty.shape == (0,)
    assert empty.dtype == np.int64


@settings(deadline=None, max_examples=60)
@given(
    data=st.data(),
    m=st.integers(1, 30),
    n=st.integers(0, 35),
    seed=st.integers(0, 2**63 - 1),
)
def test_badge_distinct_with_duplicates(data: st.DataObject, m: int, n: int, seed: int) -> None:
    # Values from a tiny set make identical and zero rows common.
    elements = st.sampled_from([-1.0, 0.0, 0.0, 0.5, 1.0])
    factors = data.draw(hnp.arrays(np.float64, (m, 3), elements=elements))
    embeddings = data.draw(hnp.arrays(np.float64, (m, 2), elements=elements))
    picks = badge_select(factors, embeddings, n, seed)
    assert picks.dtype == np.int64
    assert len(picks) == min(n, m)
    assert len(set(picks.tolist())) == len(picks)
    assert all(0 <= p < m for p in picks.tolist())
    # These values and their dot products are exact in float32, so the float32
    # path must draw the same rows.
    as_float32 = badge_select(factors.astype(np.float32), embeddings.astype(np.float32), n, seed)
    assert as_float32.tolist() == picks.tolist()


def test_badge_memory_bounded() -> None:
    rng = np.random.default_rng(0)
    factors = rng.standard_normal((20_000, 100), dtype=np.float32)
    embeddings = rng.standard_normal((20_000, 768), dtype=np.float32)
    tracemalloc.start()
    try:
        picks = badge_select(factors, embeddings, 10, seed=0)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Explicit gradient embeddings would take 20000 * 100 * 768 * 8 bytes = 12.3 GB,
    # and float64 copies of the inputs 16 MB + 123 MB. Float32 inputs are used
    # as they are, so only (m,) vectors remain: 160 kB each in float64.
    assert peak_bytes < 8 * 2**20
    assert len(set(picks.tolist())) == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -2}, r"n must be an integer >= 0, got -2"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1; derive one with"),
        ({"seed": True}, r"seed must be an integer >= 0, got True"),
        ({"chunk_rows": 0}, r"chunk_rows must be an integer >= 1, got 0"),
        (
            {"embeddings": np.ones((3, 2))},
            r"embeddings must have one row per candidate \(4 rows\), got shape \(3, 2\)",
        ),
        ({"factors": np.ones((4, 0))}, r"factors has no columns, got shape \(4, 0\)"),
        (
            {"factors": np.array([[1.0, 0.0]] * 3 + [[np.inf, 0.0]])},
            r"factors has NaN, inf or values too large to square in float64 at positions \[3\]",
        ),
        (
            {"factors": np.full((4, 2), 1e150), "embeddings": np.full((4, 2), 1e150)},
            r"gradient embedding norms \|a_i\|\^2 \|h_i\|\^2 above 1.12e\+307 at positions "
            r"\[0, 1, 2, 3\] would overflow float64 in D² sampling",
        ),
    ],
)
def test_badge_invalid_input(kwargs: dict, message: str) -> None:
    arguments = {"factors": np.ones((4, 2)), "embeddings": np.ones((4, 2)), "n": 2, "seed": 0}
    arguments.update(kwargs)
    chunk_rows = arguments.pop("chunk_rows", 1024)
    with pytest.raises(StrategyError, match=message):
        badge_select(
            arguments["factors"],
            arguments["embeddings"],
            arguments["n"],
            arguments["seed"],
            chunk_rows=chunk_rows,
        )
