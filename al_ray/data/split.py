"""The seeded, stratified split of a dataset into initial labeled set, pool and test set."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.model_selection import train_test_split

from al_ray.data.types import LabeledData, format_ids
from al_ray.errors import DataError

__all__ = ["Split", "make_split"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Split:
    """Three disjoint sets of ``row_id``, each int64, sorted ascending and read-only.

    Together they hold every row of the dataset, except the rows dropped when
    the pool was capped with ``pool_size``.
    """

    initial_labeled: np.ndarray
    """Rows whose labels the first model trains on, shape ``(n_initial,)``."""

    pool: np.ndarray
    """Unlabeled rows that query strategies choose from, shape ``(n_pool,)``."""

    test: np.ndarray
    """Held-out rows for evaluation, never queried or trained on, shape ``(n_test,)``."""


def _sorted_ids(row_ids: np.ndarray) -> np.ndarray:
    ids = np.sort(np.asarray(row_ids, dtype=np.int64))
    ids.flags.writeable = False
    return ids


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise DataError(f"{name} must be an integer, got {value!r}.")
    if value < minimum:
        raise DataError(f"{name} must be at least {minimum}, got {value}.")
    return int(value)


def _test_count(test_size: int | float, n_rows: int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, Real):
        raise DataError(
            "test_size must be a row count (int) or a fraction in (0, 1) (float), got "
            f"{test_size!r}."
        )
    if isinstance(test_size, Integral):
        if not 1 <= test_size < n_rows:
            raise DataError(
                f"test_size={test_size} rows does not fit dataset of {n_rows} rows; use a count "
                f"between 1 and {n_rows - 1} or a fraction in (0, 1)."
            )
        return int(test_size)
    if not 0.0 < test_size < 1.0:
        raise DataError(
            f"test_size={test_size} is out of range; a float test_size is a fraction in (0, 1), "
            "for example 0.2, and an int is a row count."
        )
    # scikit-learn rounds a fractional test size up.
    return math.ceil(test_size * n_rows)


def _class_counts(labels: np.ndarray, classes: tuple[str, ...]) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {classes[value]: int(count) for value, count in zip(values, counts)}


def _random_state(seed: int) -> np.random.RandomState:
    # scikit-learn takes int seeds below 2**32 only; a RandomState over a seeded MT19937
    # accepts any non-negative seed, including the 63-bit seeds from derive_seed.
    return np.random.RandomState(np.random.MT19937(seed))


def _cover_every_class(
    initial: np.ndarray, pool: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Swap pool rows into ``initial`` until every class in ``initial ∪ pool`` appears in it.

    ``initial`` and ``pool`` are positions into ``labels``. Proportional
    allocation rounds a rare class down to zero rows when the initial set is
    small. Each swap moves one random row of the missing class in and one row
    of the class with most rows in ``initial`` out, so the sizes stay the same
    and the other classes stay close to proportional.
    """
    initial = initial.copy()
    pool = pool.copy()
    for label in np.setdiff1d(labels[pool], labels[initial]):
        incoming_slot = rng.choice(np.flatnonzero(labels[pool] == label))
        initial_labels = labels[initial]
        largest = np.argmax(np.bincount(initial_labels))
        outgoing_slot = rng.choice(np.flatnonzero(initial_labels == largest))
        initial[outgoing_slot], pool[incoming_slot] = pool[incoming_slot], initial[outgoing_slot]
    return initial, pool


def _stratified_sample(
    rows: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``size`` of ``rows`` with per-class counts proportional to ``labels``.

    Each class gets the floor of its share, and the rows left over go to the
    classes with the largest remainders, ties broken at random. Unlike
    scikit-learn's stratified split it needs no minimum count per class.
    """
    values, counts = np.unique(labels, return_counts=True)
    shares = counts * size / labels.size
    quotas = np.floor(shares).astype(np.int64)
    leftover = size - int(quotas.sum())
    tie_break = rng.random(values.size)
    by_remainder = np.lexsort((tie_break, -(shares - quotas)))
    quotas[by_remainder[:leftover]] += 1

    chosen = [
        rng.choice(rows[labels == value], size=int(quota), replace=False)
        for value, quota in zip(values, quotas)
    ]
    return np.concatenate(chosen).astype(np.int64)


def make_split(
    data: LabeledData,
    *,
    initial_labeled: int,
    test_size: int | float,
    seed: int,
    pool_size: int | None = None,
) -> Split:
    """Split ``data`` into an initial labeled set, an unlabeled pool and a test set.

    The test set is drawn first, stratified by class with scikit-learn's
    ``train_test_split``. The initial labeled set is drawn from the remaining
    rows the same way, then adjusted so that it contains at least one row of
    every class left after the test split. An initial set smaller than the
    class count cannot cover every class: it is a uniform random sample
    instead, and it may be empty (a cold start). The pool is the rest,
    optionally cut down to ``pool_size`` rows by a stratified sample. Rows cut
    from the pool belong to no set.

    Args:
        data: The dataset to split.
        initial_labeled: Number of rows labeled before the first query; 0
            for a cold start. Below the number of classes, not every class
            is labeled before the first query.
        test_size: Test rows as a count (int) or as a fraction of all rows in (0, 1) (float).
        seed: Non-negative seed. The same seed and data give the same split.
        pool_size: Maximum number of pool rows, or None to keep every remaining row.

    Returns:
        The three sets of ``row_id``.

    Raises:
        DataError: If a size is out of range or does not fit the data, or a
            class has too few rows for a stratified split.
    """
    n_rows = len(data)
    seed = _check_int(seed, "seed", 0)
    initial_count = _check_int(initial_labeled, "initial_labeled", 0)
    if pool_size is not None:
        pool_size = _check_int(pool_size, "pool_size", 1)
    if n_rows < 2:
        raise DataError(f"dataset {data.name!r} has {n_rows} rows; a split needs at least 2.")
    test_count = _test_count(test_size, n_rows)

    counts = _class_counts(data.labels, data.classes)
    n_classes = len(counts)
    single = [name for name, count in counts.items() if count < 2]
    if single:
        raise DataError(
            f"classes {format_ids([repr(name) for name in single])} of dataset {data.name!r} have "
            "only 1 row; a stratified test split needs at least 2 rows per class. Add rows of "
            "those classes or drop them."
        )
    if test_count < n_classes or n_rows - test_count < n_classes:
        raise DataError(
            f"test_size={test_size} gives {test_count} test rows and {n_rows - test_count} other "
            f"rows, but a stratified split of {n_classes} classes needs at least {n_classes} in "
            "each; choose a test_size between those limits."
        )
    remaining = n_rows - test_count
    # The pool must keep one row per class as well, for the stratified initial split.
    if initial_count > remaining - n_classes:
        raise DataError(
            f"initial_labeled={initial_count} does not fit: {remaining} rows remain after the "
            f"{test_count} test rows, and the pool needs at least {n_classes} of them. Set "
            f"initial_labeled to at most {remaining - n_classes} or lower test_size."
        )

    # The splits work on array positions, which become row_ids at the end.
    seeds = np.random.SeedSequence(seed).generate_state(3, dtype=np.uint64)
    rest, test = train_test_split(
        np.arange(n_rows),
        test_size=test_count,
        random_state=_random_state(int(seeds[0])),
        stratify=data.labels,
    )

    rest_counts = _class_counts(data.labels[rest], data.classes)
    short = [name for name in counts if rest_counts.get(name, 0) < 2]
    if short:
        raise DataError(
            f"classes {format_ids([repr(name) for name in short])} of dataset {data.name!r} have "
            f"fewer than 2 rows left after taking {test_count} test rows; the stratified initial "
            "split needs at least 2 per class. Lower test_size or add rows of those classes."
        )

    rng = np.random.default_rng(int(seeds[2]))
    if initial_count >= n_classes:
        initial, pool = train_test_split(
            rest,
            train_size=initial_count,
            random_state=_random_state(int(seeds[1])),
            stratify=data.labels[rest],
        )
        initial, pool = _cover_every_class(initial, pool, data.labels, rng)
    else:
        # Too few rows to stratify: the first rounds start cold, and the loop
        # falls back to a diversity strategy until two classes are labeled.
        shuffled = np.random.default_rng(int(seeds[1])).permutation(rest)
        initial, pool = shuffled[:initial_count], shuffled[initial_count:]
        if initial_count == 0:
            logger.info("initial_labeled=0: %s starts with no labels (a cold start)", data.name)
        else:
            logger.info(
                "initial_labeled=%d is below the %d classes of %s; drew a uniform sample that "
                "cannot cover every class",
                initial_count, n_classes, data.name,
            )

    if pool_size is not None and pool_size < pool.size:
        dropped = pool.size - pool_size
        pool = _stratified_sample(pool, data.labels[pool], pool_size, rng)
        logger.info(
            "capped the pool of %s at pool_size=%d rows; %d rows dropped",
            data.name, pool_size, dropped,
        )

    split = Split(
        initial_labeled=_sorted_ids(data.row_ids[initial]),
        pool=_sorted_ids(data.row_ids[pool]),
        test=_sorted_ids(data.row_ids[test]),
    )
    logger.info(
        "split %s with seed %d: %d initial labeled, %d pool, %d test rows",
        data.name, seed, split.initial_labeled.size, split.pool.size, split.test.size,
    )
    return split
