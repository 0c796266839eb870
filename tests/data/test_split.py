"""make_split: sizes, stratification, repeatability, the pool cap and bad sizes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from al_ray.data import LabeledData, Split, load_shipped, make_split
from al_ray.errors import DataError


def make_data(class_counts: list[int], id_offset: int = 1000, id_step: int = 7) -> LabeledData:
    """Rows of class i repeated class_counts[i] times, with ids offset + step * position."""
    labels = np.repeat(np.arange(len(class_counts)), class_counts)
    n_rows = labels.size
    return LabeledData(
        name="toy",
        row_ids=id_offset + id_step * np.arange(n_rows),
        features=np.arange(n_rows, dtype=np.float32).reshape(-1, 1),
        labels=labels,
        classes=tuple(f"c{index}" for index in range(len(class_counts))),
        feature_names=("x",),
    )


def class_counts(data: LabeledData, row_ids: np.ndarray) -> list[int]:
    return np.bincount(data.subset(row_ids).labels, minlength=data.n_classes).tolist()


def split_arrays(split: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return split.initial_labeled, split.pool, split.test


def test_sizes_and_per_class_counts():
    data = make_data([40, 40, 40])

    split = make_split(data, initial_labeled=6, test_size=30, seed=0)

    assert split.initial_labeled.size == 6
    assert split.pool.size == 84
    assert split.test.size == 30
    # 30 test rows from three equal classes: 10 each; 6 initial rows: 2 each.
    assert class_counts(data, split.test) == [10, 10, 10]
    assert class_counts(data, split.initial_labeled) == [2, 2, 2]
    assert class_counts(data, split.pool) == [28, 28, 28]


def test_disjoint_sorted_cover_all_rows():
    data = make_data([25, 15, 10])

    split = make_split(data, initial_labeled=5, test_size=0.2, seed=3)

    initial, pool, test = split_arrays(split)
    for ids in (initial, pool, test):
        assert ids.dtype == np.int64
        assert np.all(np.diff(ids) > 0)
        assert not ids.flags.writeable
    assert not set(initial) & set(pool)
    assert not set(initial) & set(test)
    assert not set(pool) & set(test)
    assert sorted(np.concatenate([initial, pool, test]).tolist()) == data.row_ids.tolist()


def test_fraction_rounds_up():
    data = make_data([21, 21])

    split = make_split(data, initial_labeled=2, test_size=0.25, seed=0)

    # ceil(0.25 * 42) = 11.
    assert split.test.size == 11


def test_same_seed_same_split():
    data = make_data([30, 20, 10])

    first = make_split(data, initial_labeled=6, test_size=12, seed=42)
    second = make_split(data, initial_labeled=6, test_size=12, seed=42)

    for a, b in zip(split_arrays(first), split_arrays(second)):
        np.testing.assert_array_equal(a, b)


def test_different_seed_different_split():
    data = make_data([30, 20, 10])

    first = make_split(data, initial_labeled=6, test_size=12, seed=1)
    second = make_split(data, initial_labeled=6, test_size=12, seed=2)

    assert not np.array_equal(first.test, second.test)


def test_large_seed_accepted():
    data = make_data([10, 10])

    split = make_split(data, initial_labeled=2, test_size=4, seed=2**63 - 1)

    assert split.test.size == 4


def test_rare_class_in_initial_set():
    # Proportional allocation of 3 initial rows over counts 100, 100, 3 gives the rare class 0 rows.
    data = make_data([100, 100, 4])

    for seed in range(10):
        split = make_split(data, initial_labeled=3, test_size=0.2, seed=seed)
        assert class_counts(data, split.initial_labeled) == [1, 1, 1]


def test_pool_size_caps_pool():
    data = make_data([60, 30, 30])

    split = make_split(data, initial_labeled=4, test_size=20, seed=5, pool_size=48)

    assert split.pool.size == 48
    assert split.initial_labeled.size == 4
    assert split.test.size == 20
    # The uncapped pool contains about 48, 24, 24 rows; a half-size cap keeps about half of each.
    pool_counts = class_counts(data, split.pool)
    assert abs(pool_counts[0] - 24) <= 1
    assert abs(pool_counts[1] - 12) <= 1
    assert abs(pool_counts[2] - 12) <= 1


def test_pool_cap_drops_rows():
    data = make_data([60, 30, 30])
    uncapped = make_split(data, initial_labeled=4, test_size=20, seed=5)

    capped = make_split(data, initial_labeled=4, test_size=20, seed=5, pool_size=48)

    np.testing.assert_array_equal(capped.initial_labeled, uncapped.initial_labeled)
    np.testing.assert_array_equal(capped.test, uncapped.test)
    assert set(capped.pool) < set(uncapped.pool)
    assert len(set(data.row_ids) - set(np.concatenate(split_arrays(capped)))) == 48


def test_pool_size_above_pool():
    data = make_data([20, 20])

    split = make_split(data, initial_labeled=2, test_size=10, seed=0, pool_size=1000)

    assert split.pool.size == 28


def test_mnist_split_stratified():
    data = load_shipped("mnist_test")

    split = make_split(data, initial_labeled=20, test_size=0.2, seed=0)

    # 2000 test rows; each digit gets 20% of its count, floor or ceiling.
    counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    for got, total in zip(class_counts(data, split.test), counts):
        assert math.floor(total * 0.2) <= got <= math.ceil(total * 0.2)
    assert class_counts(data, split.initial_labeled) == [2] * 10


def test_initial_below_class_count_is_uniform_sample():
    data = make_data([10, 10, 10])

    split = make_split(data, initial_labeled=2, test_size=6, seed=0)

    assert split.initial_labeled.size == 2
    assert split.pool.size == 22
    assert not set(split.initial_labeled) & set(split.pool)
    again = make_split(data, initial_labeled=2, test_size=6, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(split_arrays(split), split_arrays(again)))


def test_cold_start_has_empty_initial_set():
    data = make_data([10, 10, 10])

    split = make_split(data, initial_labeled=0, test_size=6, seed=0)

    assert split.initial_labeled.size == 0
    assert split.initial_labeled.dtype == np.int64
    assert split.pool.size == 24


def test_initial_too_large():
    data = make_data([10, 10])

    with pytest.raises(DataError, match=r"initial_labeled=15 does not fit: 16 rows remain after the 4 test rows, and the pool needs at least 2 of them\. Set initial_labeled to at most 14 or lower test_size\."):
        make_split(data, initial_labeled=15, test_size=4, seed=0)


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, -0.1])
def test_fraction_out_of_range(test_size):
    data = make_data([10, 10])

    with pytest.raises(DataError, match=rf"test_size={test_size} is out of range; a float test_size is a fraction in \(0, 1\)"):
        make_split(data, initial_labeled=2, test_size=test_size, seed=0)


@pytest.mark.parametrize("test_size", [0, 20, 25])
def test_count_out_of_range(test_size):
    data = make_data([10, 10])

    with pytest.raises(DataError, match=rf"test_size={test_size} rows does not fit dataset of 20 rows; use a count between 1 and 19"):
        make_split(data, initial_labeled=2, test_size=test_size, seed=0)


@pytest.mark.parametrize("test_size", ["0.2", True, None])
def test_test_size_wrong_type(test_size):
    data = make_data([10, 10])

    with pytest.raises(DataError, match=r"test_size must be a row count \(int\) or a fraction in \(0, 1\) \(float\)"):
        make_split(data, initial_labeled=2, test_size=test_size, seed=0)


def test_test_set_smaller_than_classes():
    data = make_data([10, 10, 10])

    with pytest.raises(DataError, match=r"test_size=2 gives 2 test rows and 28 other rows, but a stratified split of 3 classes needs at least 3 in each"):
        make_split(data, initial_labeled=3, test_size=2, seed=0)


def test_class_with_one_row():
    data = make_data([10, 1, 10])

    with pytest.raises(DataError, match=r"classes 'c1' of dataset 'toy' have only 1 row; a stratified test split needs at least 2 rows per class"):
        make_split(data, initial_labeled=3, test_size=6, seed=0)


def test_class_used_up_by_test():
    # A 0.5 test fraction takes 1 of the 2 rows of class c1, leaving 1 for the initial split.
    data = make_data([20, 2])

    with pytest.raises(DataError, match=r"classes 'c1' of dataset 'toy' have fewer than 2 rows left after taking 11 test rows; .* Lower test_size or add rows"):
        make_split(data, initial_labeled=2, test_size=0.5, seed=0)


def test_negative_seed():
    with pytest.raises(DataError, match=r"seed must be at least 0, got -1\."):
        make_split(make_data([10, 10]), initial_labeled=2, test_size=4, seed=-1)


def test_pool_size_zero():
    with pytest.raises(DataError, match=r"pool_size must be at least 1, got 0\."):
        make_split(make_data([10, 10]), initial_labeled=2, test_size=4, seed=0, pool_size=0)


def test_float_initial_labeled():
    with pytest.raises(DataError, match=r"initial_labeled must be an integer, got 2\.0\."):
        make_split(make_data([10, 10]), initial_labeled=2.0, test_size=4, seed=0)


@st.composite
def feasible_splits(draw):
    """Class counts of at least 6, a test set of at most 40%, and an initial set that fits."""
    counts = draw(st.lists(st.integers(6, 30), min_size=1, max_size=5))
    n_rows, n_classes = sum(counts), len(counts)
    test_count = max(n_classes, round(draw(st.floats(0.1, 0.4)) * n_rows))
    initial = draw(st.integers(n_classes, n_rows - test_count - n_classes))
    permutation_seed = draw(st.integers(0, 2**32 - 1))
    seed = draw(st.integers(0, 2**63 - 1))
    pool_size = draw(st.none() | st.integers(1, n_rows))
    return counts, test_count, initial, permutation_seed, seed, pool_size


@settings(max_examples=60, deadline=None)
@given(feasible_splits())
def test_split_invariants(params):
    counts, test_count, initial, permutation_seed, seed, pool_size = params
    rng = np.random.default_rng(permutation_seed)
    labels = rng.permutation(np.repeat(np.arange(len(counts)), counts))
    row_ids = rng.choice(10**9, size=labels.size, replace=False)
    data = LabeledData(
        name="random",
        row_ids=row_ids,
        features=np.zeros((labels.size, 1), dtype=np.float32),
        labels=labels,
        classes=tuple(f"c{index}" for index in range(len(counts))),
        feature_names=("x",),
    )

    split = make_split(data, initial_labeled=initial, test_size=test_count, seed=seed, pool_size=pool_size)

    initial_ids, pool, test = split_arrays(split)
    all_ids = np.concatenate([initial_ids, pool, test])
    assert np.unique(all_ids).size == all_ids.size
    assert set(all_ids.tolist()) <= set(row_ids.tolist())
    for ids in (initial_ids, pool, test):
        assert np.all(np.diff(ids) > 0)
    assert initial_ids.size == initial
    assert test.size == test_count
    uncapped_pool = labels.size - initial - test_count
    assert pool.size == (uncapped_pool if pool_size is None else min(pool_size, uncapped_pool))
    assert min(class_counts(data, initial_ids)) >= 1
    for got, total in zip(class_counts(data, test), counts):
        assert abs(got - test_count * total / labels.size) < 1

    again = make_split(data, initial_labeled=initial, test_size=test_count, seed=seed, pool_size=pool_size)
    for a, b in zip(split_arrays(split), split_arrays(again)):
        np.testing.assert_array_equal(a, b)
