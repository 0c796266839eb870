"""Top-n selection, seeded tie-breaking and the merge of per-chunk selections."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from al_ray.errors import StrategyError
from al_ray.strategies import Selection, merge_selections, select_top_n, tie_keys

# SplitMix64 constants: the increment (golden ratio * 2**64) and 64-bit mask.
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1


def splitmix64_reference(row_id: int, seed: int) -> int:
    """Compute one tie key with Python integers, written out from the published mixer."""
    z = (((row_id ^ seed) & MASK64) + GOLDEN_GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def reference_top_n(row_ids: np.ndarray, utilities: np.ndarray, n: int, seed: int) -> list[int]:
    """Sort by (utility descending, tie key, row_id) in plain Python and take n."""
    keys = [splitmix64_reference(int(r), seed) for r in row_ids]
    order = sorted(
        range(len(row_ids)), key=lambda i: (-float(utilities[i]), keys[i], int(row_ids[i]))
    )
    return [int(row_ids[i]) for i in order[:n]]


def test_tie_keys_splitmix64_vectors() -> None:
    # SplitMix64 seeded with 0 outputs 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4 and
    # 0x06C45D188009454F: the mixer applied to the states 1, 2 and 3 times gamma.
    # tie_keys mixes (row_id XOR seed) + gamma, so these row_ids reach those states.
    row_ids = np.array([0, GOLDEN_GAMMA - (1 << 64), (2 * GOLDEN_GAMMA) & MASK64], dtype=np.int64)
    keys = tie_keys(row_ids, seed=0)
    assert keys.dtype == np.uint64
    assert keys.tolist() == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_tie_keys_seed_xor() -> None:
    # Seed and row_id enter only through their XOR.
    assert tie_keys(np.array([0]), seed=GOLDEN_GAMMA - (1 << 64))[0] == 0x6E789E6AA1B965F4


@settings(deadline=None)
@given(
    row_ids=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=20),
    seed=st.integers(-(2**63), 2**64 - 1),
)
def test_tie_keys_match_reference(row_ids: list[int], seed: int) -> None:
    keys = tie_keys(np.array(row_ids, dtype=np.int64), seed)
    assert keys.tolist() == [splitmix64_reference(r, seed) for r in row_ids]


def test_tie_keys_independent_of_batch() -> None:
    row_ids = np.array([5, 900, 17, 2**40])
    together = tie_keys(row_ids, seed=11)
    alone = [tie_keys(row_ids[i : i + 1], seed=11)[0] for i in range(4)]
    assert together.tolist() == alone


def test_select_top_n_order() -> None:
    row_ids = np.array([10, 11, 12, 13])
    utilities = np.array([0.1, 0.9, 0.5, 0.7])
    selection = select_top_n(row_ids, utilities, 3, seed=0)
    assert selection.row_ids.tolist() == [11, 13, 12]
    assert selection.utilities.tolist() == [0.9, 0.7, 0.5]
    assert selection.row_ids.dtype == np.int64
    assert selection.utilities.dtype == np.float64
    assert len(selection) == 3


def test_select_top_n_ties_follow_tie_keys() -> None:
    row_ids = np.array([3, 1, 4, 15, 9, 2, 6])
    utilities = np.array([1.0, 1.0, 0.5, 1.0, 1.0, 0.5, 1.0])
    seed = 1234
    keys = tie_keys(row_ids, seed)
    tied = row_ids[utilities == 1.0]
    tied_by_key = tied[np.argsort(keys[utilities == 1.0])].tolist()
    low = row_ids[utilities == 0.5]
    low_by_key = low[np.argsort(keys[utilities == 0.5])].tolist()

    selection = select_top_n(row_ids, utilities, 7, seed)

    assert selection.row_ids.tolist() == tied_by_key + low_by_key


def test_select_top_n_same_seed_same_order() -> None:
    row_ids = np.arange(1000)
    utilities = np.ones(1000)
    first = select_top_n(row_ids, utilities, 1000, seed=7)
    second = select_top_n(row_ids, utilities, 1000, seed=7)
    np.testing.assert_array_equal(first.row_ids, second.row_ids)


def test_select_top_n_seed_changes_tie_order() -> None:
    row_ids = np.arange(1000)
    utilities = np.ones(1000)
    first = select_top_n(row_ids, utilities, 1000, seed=1).row_ids
    second = select_top_n(row_ids, utilities, 1000, seed=2).row_ids
    assert first.tolist() != second.tolist()
    # The first ten of 1000 tied rows differ between seeds, so ties are not
    # broken by row_id or input position.
    assert first[:10].tolist() != second[:10].tolist()
    assert first.tolist() != sorted(first.tolist())


def test_select_top_n_input_order_irrelevant() -> None:
    rng = np.random.default_rng(0)
    row_ids = np.arange(200)
    utilities = rng.integers(0, 3, size=200).astype(np.float64)
    permutation = rng.permutation(200)
    straight = select_top_n(row_ids, utilities, 50, seed=3)
    shuffled = select_top_n(row_ids[permutation], utilities[permutation], 50, seed=3)
    np.testing.assert_array_equal(straight.row_ids, shuffled.row_ids)


def test_select_top_n_more_than_candidates() -> None:
    selection = select_top_n(np.array([4, 8]), np.array([0.2, 0.6]), 5, seed=0)
    assert selection.row_ids.tolist() == [8, 4]
    assert selection.utilities.tolist() == [0.6, 0.2]


def test_select_top_n_zero() -> None:
    selection = select_top_n(np.array([4, 8]), np.array([0.2, 0.6]), 0, seed=0)
    assert len(selection) == 0
    assert selection.row_ids.dtype == np.int64
    assert selection.utilities.dtype == np.float64


def test_select_top_n_empty_candidates() -> None:
    selection = select_top_n(np.empty(0, dtype=np.int64), np.empty(0), 3, seed=0)
    assert len(selection) == 0


def test_select_top_n_negative_n() -> None:
    with pytest.raises(StrategyError, match=r"the number of rows to select must be >= 0, got -1"):
        select_top_n(np.array([1]), np.array([0.5]), -1, seed=0)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_select_top_n_non_finite(bad: float) -> None:
    with pytest.raises(
        StrategyError, match=r"utilities must be finite; row_ids \[7\] have NaN or inf"
    ):
        select_top_n(np.array([5, 7, 9]), np.array([0.5, bad, 0.1]), 2, seed=0)


def test_select_top_n_non_finite_before_n_zero() -> None:
    # A NaN raises even when n is 0, so a model that outputs NaN is reported at once.
    with pytest.raises(StrategyError, match=r"utilities must be finite"):
        select_top_n(np.array([5]), np.array([np.nan]), 0, seed=0)


def test_select_top_n_shape_mismatch() -> None:
    with pytest.raises(
        StrategyError,
        match=r"row_ids and utilities must be 1-D of equal length, got shapes \(3,\) and \(2,\)",
    ):
        select_top_n(np.array([1, 2, 3]), np.array([0.1, 0.2]), 1, seed=0)


def test_select_top_n_inputs_not_mutated() -> None:
    row_ids = np.array([9, 3, 7, 1, 5, 0, 2, 8, 6, 4])
    utilities = np.array([0.3, 0.1, 0.3, 0.9, 0.3, 0.0, 0.3, 0.5, 0.2, 0.3])
    row_ids_before, utilities_before = row_ids.copy(), utilities.copy()
    # n=2 takes the path that shrinks the candidates before sorting.
    select_top_n(row_ids, utilities, 2, seed=0)
    np.testing.assert_array_equal(row_ids, row_ids_before)
    np.testing.assert_array_equal(utilities, utilities_before)


@settings(deadline=None, max_examples=200)
@given(
    utilities=st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=0, max_size=60),
    n=st.integers(0, 70),
    seed=st.integers(0, 2**63 - 1),
    data=st.data(),
)
def test_select_top_n_matches_reference(
    utilities: list[float], n: int, seed: int, data: st.DataObject
) -> None:
    row_ids = data.draw(
        st.lists(
            st.integers(-(2**62), 2**62),
            min_size=len(utilities),
            max_size=len(utilities),
            unique=True,
        )
    )
    row_ids_array = np.array(row_ids, dtype=np.int64)
    utilities_array = np.array(utilities, dtype=np.float64)
    selection = select_top_n(row_ids_array, utilities_array, n, seed)
    expected = reference_top_n(row_ids_array, utilities_array, n, seed)
    assert selection.row_ids.tolist() == expected


def test_merge_selections_empty() -> None:
    assert len(merge_selections([], 5, seed=0)) == 0
    empty = select_top_n(np.empty(0, dtype=np.int64), np.empty(0), 5, seed=0)
    assert len(merge_selections([empty, empty], 5, seed=0)) == 0


def test_merge_selections_two_chunks() -> None:
    first = Selection(np.array([1, 2]), np.array([0.9, 0.4]))
    second = Selection(np.array([3, 4]), np.array([0.8, 0.7]))
    merged = merge_selections([first, second], 3, seed=0)
    assert merged.row_ids.tolist() == [1, 3, 4]
    assert merged.utilities.tolist() == [0.9, 0.8, 0.7]


@settings(deadline=None, max_examples=200)
@given(
    utilities=st.lists(st.sampled_from([0.0, 0.1, 0.5, 1.0]), min_size=0, max_size=80),
    n=st.integers(0, 40),
    seed=st.integers(0, 2**63 - 1),
    data=st.data(),
)
def test_merge_selections_equals_global(
    utilities: list[float], n: int, seed: int, data: st.DataObject
) -> None:
    size = len(utilities)
    row_ids = np.array(
        data.draw(st.lists(st.integers(0, 2**40), min_size=size, max_size=size, unique=True)),
        dtype=np.int64,
    )
    utilities_array = np.array(utilities, dtype=np.float64)
    # Repeated boundaries give empty chunks, and few boundaries give chunks longer than n.
    boundaries = sorted(data.draw(st.lists(st.integers(0, size), max_size=8)))
    edges = [0, *boundaries, size]

    parts = [
        select_top_n(row_ids[start:stop], utilities_array[start:stop], n, seed)
        for start, stop in zip(edges[:-1], edges[1:])
    ]
    merged = merge_selections(parts, n, seed)
    whole = select_top_n(row_ids, utilities_array, n, seed)

    assert merged.row_ids.tolist() == whole.row_ids.tolist()
    assert merged.utilities.tolist() == whole.utilities.tolist()
