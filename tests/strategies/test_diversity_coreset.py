"""Core-set greedy k-center: hand-worked picks, duplicates, chunking and memory."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies.diversity import greedy_k_center


def reference_k_center(candidates: np.ndarray, labeled: np.ndarray, n: int) -> list[int]:
    """Greedy k-center written out with a full distance matrix, for small inputs."""
    # Euclidean distances (not squared), as the implementation keeps them, so a
    # start from the non-integer mean rounds the same way in both.
    distances = np.sqrt(((candidates[:, None, :] - candidates[None, :, :]) ** 2).sum(axis=2))
    if len(labeled):
        to_labeled = np.sqrt(((candidates[:, None, :] - labeled[None, :, :]) ** 2).sum(axis=2))
        nearest = to_labeled.min(axis=1)
    else:
        mean = candidates.mean(axis=0, keepdims=True)
        nearest = np.sqrt(((candidates - mean) ** 2).sum(axis=1))
    picks: list[int] = []
    for _ in range(min(n, len(candidates))):
        best = max((i for i in range(len(candidates)) if i not in picks), key=lambda i: (nearest[i], -i))
        picks.append(best)
        nearest = np.minimum(nearest, distances[best])
    return picks


def test_k_center_hand_1d() -> None:
    candidates = np.array([[1.0], [2.0], [10.0], [11.0]])
    labeled = np.array([[0.0]])
    # Distances to the labeled point 0: 1, 2, 10, 11, so 11 (position 3) first.
    # Nearest center now: 1 -> 1, 2 -> 2, 10 -> 1 (from 11), so 2 (position 1).
    # Nearest center now: 1 -> 1 (from 0 or 2), 10 -> 1: a tie, lowest position 0.
    # Then 10 (position 2) is all that is left.
    picks = greedy_k_center(candidates, labeled, 4)
    assert picks.tolist() == [3, 1, 0, 2]
    assert picks.dtype == np.int64


def test_k_center_no_labeled_starts_far_from_mean() -> None:
    candidates = np.array([[1.0], [2.0], [10.0], [11.0]])
    # The mean is 6: distances 5, 4, 4, 5, a tie between positions 0 and 3, so 1 first.
    # Nearest center now: 2 -> 1, 10 -> 9, 11 -> 10, so 11 (position 3).
    # Nearest center now: 2 -> 1 (from 1), 10 -> 1 (from 11): a tie, position 1.
    picks = greedy_k_center(candidates, None, 4)
    assert picks.tolist() == [0, 3, 1, 2]


def test_k_center_empty_labeled_array() -> None:
    candidates = np.array([[1.0], [2.0], [10.0], [11.0]])
    assert greedy_k_center(candidates, np.empty((0, 1)), 2).tolist() == [0, 3]


def test_k_center_hand_2d() -> None:
    candidates = np.array([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0], [-3.0, -4.0]])
    labeled = np.array([[0.0, 0.0], [6.0, 8.0]])
    # Squared distances to the nearest labeled row: 25, 1, 0 and 25.
    # The tie between positions 0 and 3 goes to 0. Then [-3, -4] is 100 from
    # [3, 4] and 25 from the origin, so it stays at 25 and is next.
    # Then [0, 1]: 1, and last [6, 8], a copy of a labeled row.
    assert greedy_k_center(candidates, labeled, 4).tolist() == [0, 3, 1, 2]


def test_k_center_duplicates_distinct() -> None:
    candidates = np.array([[0.0, 0.0]] * 5 + [[3.0, 4.0]] * 5 + [[10.0, 0.0]])
    labeled = np.array([[0.0, 0.0]])
    # [10, 0] is 100 away, then the first [3, 4] copy (25 < 65 from [10, 0]).
    # Every other row then has distance 0 and they follow in position order.
    picks = greedy_k_center(candidates, labeled, 11)
    assert picks.tolist() == [10, 5, 0, 1, 2, 3, 4, 6, 7, 8, 9]


def test_k_center_all_identical() -> None:
    candidates = np.ones((50, 3))
    picks = greedy_k_center(candidates, np.ones((4, 3)), 20)
    assert picks.tolist() == list(range(20))


def test_k_center_rows_near_duplicates_tie_exactly() -> None:
    # Rows far from the origin make x.x - 2 x.y + y.y cancel badly; copies of a
    # picked row must still come back in position order, not by rounding noise.
    rng = np.random.default_rng(7)
    base = rng.normal(1e3, 1.0, size=(3, 16))
    candidates = np.repeat(base, 4, axis=0)
    picks = greedy_k_center(candidates, None, 12)
    assert len({int(p) // 4 for p in picks[:3]}) == 3
    rest = [int(p) for p in picks[3:]]
    assert rest == sorted(rest)


def test_k_center_n_above_m() -> None:
    candidates = np.array([[0.0], [1.0], [2.0]])
    picks = greedy_k_center(candidates, None, 10)
    assert sorted(picks.tolist()) == [0, 1, 2]


def test_k_center_n_zero() -> None:
    picks = greedy_k_center(np.ones((3, 2)), None, 0)
    assert picks.shape == (0,)
    assert picks.dtype == np.int64


def test_k_center_no_candidates() -> None:
    picks = greedy_k_center(np.empty((0, 2)), np.ones((3, 2)), 5)
    assert picks.shape == (0,)


def test_k_center_float32_same_as_float64() -> None:
    rng = np.random.default_rng(3)
    candidates = rng.integers(-20, 20, size=(60, 5)).astype(np.float64)
    labeled = rng.integers(-20, 20, size=(7, 5)).astype(np.float64)
    expected = greedy_k_center(candidates, labeled, 15)
    got = greedy_k_center(candidates.astype(np.float32), labeled.astype(np.float32), 15)
    assert got.tolist() == expected.tolist()


@settings(deadline=None, max_examples=40)
@given(
    candidates=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 25), st.just(3)),
        elements=st.integers(-4, 4).map(float),
    ),
    labeled=hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 6), st.just(3)),
        elements=st.integers(-4, 4).map(float),
    ),
    n=st.integers(0, 30),
    chunk_rows=st.integers(1, 5),
)
def test_k_center_matches_reference(
    candidates: np.ndarray, labeled: np.ndarray, n: int, chunk_rows: int
) -> None:
    # Small integer coordinates keep every squared distance exact, so ties and
    # duplicates resolve the same way in both implementations.
    picks = greedy_k_center(candidates, labeled, n, chunk_rows=chunk_rows)
    assert picks.tolist() == reference_k_center(candidates, labeled, n)
    assert len(set(picks.tolist())) == len(picks) == min(n, len(candidates))


def test_k_center_memory_bounded() -> None:
    rng = np.random.default_rng(0)
    candidates = rng.standard_normal((20_000, 64))
    labeled = rng.standard_normal((20_000, 64))
    tracemalloc.start()
    try:
        picks = greedy_k_center(candidates, labeled, 10)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A full candidate-by-labeled float64 matrix would take 20000**2 * 8 = 3.2 GB.
    # tracemalloc sees Python and numpy allocations only; scikit-learn's
    # nearest-neighbour reduction adds one chunk_rows x chunk_rows float64
    # buffer per thread in C++ (8 MiB at the default 1024), unseen here.
    assert peak_bytes < 100 * 2**20
    assert len(set(picks.tolist())) == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, r"n must be an integer >= 0, got -1"),
        ({"n": 2.5}, r"n must be an integer >= 0, got 2.5 of type float"),
        ({"chunk_rows": 0}, r"chunk_rows must be an integer >= 1, got 0"),
        ({"labeled": np.ones((2, 3))}, r"labeled must have the candidates' 2 columns, got shape \(2, 3\)"),
        ({"labeled": np.ones(3)}, r"labeled must have shape \(n_rows, n_columns\), got \(3,\)"),
        ({"candidates": np.ones(4)}, r"candidates must have shape \(n_rows, n_columns\), got \(4,\)"),
        (
            {"candidates": np.array([[0.0, 1.0], [np.nan, 0.0]])},
            r"candidates has NaN, inf or values too large to square in float64 at positions \[1\]",
        ),
        (
            {"labeled": np.array([[1e200, 0.0]])},
            r"labeled has NaN, inf or values too large to square in float64 at positions \[0\]",
        ),
        ({"candidates": np.array([["a", "b"]])}, r"candidates must hold real numbers, got dtype <U1"),
    ],
)
def test_k_center_invalid_input(kwargs: dict, message: str) -> None:
    arguments = {"candidates": np.ones((3, 2)), "labeled": np.zeros((1, 2)), "n": 2}
    arguments.update(kwargs)
    chunk_rows = arguments.pop("chunk_rows", 1024)
    with pytest.raises(StrategyError, match=message):
        greedy_k_center(
            arguments["candidates"], arguments["labeled"], arguments["n"], chunk_rows=chunk_rows
        )
