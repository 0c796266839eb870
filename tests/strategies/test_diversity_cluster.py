"""Cluster-margin: round-robin order by hand, clustering, scale and input checks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies.diversity import cluster_margin_select, default_cluster_count


def test_cluster_margin_round_robin_hand() -> None:
    margins = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.95, 0.3])
    clusters = np.array([0, 0, 0, 1, 1, 2, 3, 3])
    # Cluster sizes: 0 -> 3, 1 -> 2, 2 -> 1, 3 -> 2. Visiting order, smallest
    # first: 2 (size 1), then the size-2 tie, broken by the best margin: 3
    # (0.95) before 1 (0.6), then 0 (size 3).
    # Turn 0 takes each cluster's best row: 5, 6, 3, 0.
    # Turn 1 skips cluster 2 (empty): 7, 4, 1. Turn 2: only cluster 0 has one left: 2.
    picks = cluster_margin_select(margins, None, 8, seed=0, clusters=clusters)
    assert picks.tolist() == [5, 6, 3, 0, 7, 4, 1, 2]
    assert picks.dtype == np.int64


def test_cluster_margin_stops_at_n() -> None:
    margins = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.95, 0.3])
    clusters = np.array([0, 0, 0, 1, 1, 2, 3, 3])
    picks = cluster_margin_select(margins, None, 5, seed=0, clusters=clusters)
    assert picks.tolist() == [5, 6, 3, 0, 7]


def test_cluster_margin_ties_lowest_position() -> None:
    margins = np.array([0.5, 0.5, 0.5, 0.5])
    clusters = np.array([7, -1, 7, -1])
    # Equal sizes and equal best margins: the lower label (-1) goes first.
    # Inside each cluster equal margins go by position.
    picks = cluster_margin_select(margins, None, 4, seed=0, clusters=clusters)
    assert picks.tolist() == [1, 0, 3, 2]


def test_cluster_margin_features_ignored_with_clusters() -> None:
    margins = np.array([0.1, 0.2, 0.3])
    clusters = np.array([0, 1, 1])
    with_features = cluster_margin_select(
        margins, np.random.default_rng(0).standard_normal((3, 2)), 3, 0, clusters=clusters
    )
    assert with_features.tolist() == [0, 2, 1]


def test_cluster_margin_kmeans_separates_blobs() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    blob = np.repeat(np.arange(3), 20)
    features = centers[blob] + rng.normal(0.0, 1.0, size=(60, 2))
    # Blob 0 holds the 20 highest margins; margin order alone would take it only.
    margins = np.where(blob == 0, 0.9, 0.1) + rng.uniform(0.0, 0.01, size=60)
    picks = cluster_margin_select(margins, features, 3, seed=1, n_clusters=3)
    assert sorted(blob[picks].tolist()) == [0, 1, 2]


def test_cluster_margin_same_seed_same_picks() -> None:
    rng = np.random.default_rng(1)
    features = rng.standard_normal((500, 4))
    margins = rng.random(500)
    first = cluster_margin_select(margins, features, 40, seed=3)
    second = cluster_margin_select(margins, features, 40, seed=3)
    assert first.tolist() == second.tolist()


def test_cluster_margin_large_seed() -> None:
    rng = np.random.default_rng(1)
    features = rng.standard_normal((50, 2))
    picks = cluster_margin_select(rng.random(50), features, 10, seed=2**63 - 1)
    assert len(set(picks.tolist())) == 10


def test_cluster_margin_duplicate_features() -> None:
    features = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 15, axis=0)
    margins = np.linspace(0.0, 1.0, 30)
    picks = cluster_margin_select(margins, features, 30, seed=0, n_clusters=10)
    assert sorted(picks.tolist()) == list(range(30))


def test_cluster_margin_large_pool() -> None:
    rng = np.random.default_rng(2)
    margins = rng.random(100_000)
    features = rng.standard_normal((100_000, 8)).astype(np.float32)
    picks = cluster_margin_select(margins, features, 10_000, seed=0)
    assert len(picks) == 10_000
    assert len(np.unique(picks)) == 10_000


def test_cluster_margin_large_precomputed() -> None:
    rng = np.random.default_rng(3)
    margins = rng.random(100_000)
    clusters = rng.integers(0, 5_000, size=100_000)
    picks = cluster_margin_select(margins, None, 10_000, seed=0, clusters=clusters)
    assert len(np.unique(picks)) == 10_000
    # Every cluster gives its best row in the first turn.
    first_turn = picks[: np.unique(clusters).size]
    assert len(np.unique(clusters[first_turn])) == np.unique(clusters).size


@pytest.mark.parametrize(
    ("m", "expected"), [(0, 0), (1, 1), (4, 4), (5, 5), (100, 20), (101, 21), (100_000, 633)]
)
def test_default_cluster_count_values(m: int, expected: int) -> None:
    # min(m, ceil(2 sqrt(m))): 2 sqrt(5) = 4.47 -> 5, 2 sqrt(101) = 20.1 -> 21.
    assert default_cluster_count(m) == expected


def test_cluster_margin_n_zero_and_no_rows() -> None:
    assert cluster_margin_select(np.ones(3), np.ones((3, 2)), 0, seed=0).shape == (0,)
    empty = cluster_margin_select(np.empty(0), np.empty((0, 2)), 4, seed=0)
    assert empty.shape == (0,)
    assert empty.dtype == np.int64


@settings(deadline=None, max_examples=80)
@given(
    data=st.data(),
    m=st.integers(1, 40),
    n=st.integers(0, 45),
)
def test_cluster_margin_one_per_cluster_first(data: st.DataObject, m: int, n: int) -> None:
    margins = data.draw(hnp.arrays(np.float64, m, elements=st.sampled_from([0.0, 0.25, 0.5, 1.0])))
    clusters = data.draw(hnp.arrays(np.int64, m, elements=st.integers(-3, 5)))
    picks = cluster_margin_select(margins, None, n, seed=0, clusters=clusters)
    assert len(picks) == min(n, m)
    assert len(set(picks.tolist())) == len(picks)
    n_clusters = len(np.unique(clusters))
    head = picks[:n_clusters]
    assert len(set(clusters[head].tolist())) == len(head)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, r"n must be an integer >= 0, got -1"),
        ({"seed": -3}, r"seed must be an integer >= 0, got -3"),
        ({"margins": np.ones((3, 1))}, r"margins must have shape \(m,\), got \(3, 1\)"),
        (
            {"margins": np.array([0.1, np.nan, 0.3])},
            r"margins must be finite; positions \[1\] hold NaN or inf",
        ),
        ({"features": None}, r"features are required unless precomputed clusters are given"),
        ({"features": np.ones((2, 2))}, r"features must have one row per candidate \(3 rows\)"),
        ({"n_clusters": 0}, r"n_clusters must be an integer >= 1 or None, got 0"),
        (
            {"clusters": np.array([0, 1, 1]), "n_clusters": 2},
            r"pass either clusters or n_clusters, not both; got n_clusters=2",
        ),
        ({"clusters": np.array([0, 1])}, r"clusters must have shape \(3,\), one label per candidate"),
        (
            {"clusters": np.array([0.0, 1.0, 1.0])},
            r"clusters must be integer labels, got dtype float64",
        ),
    ],
)
def test_cluster_margin_invalid_input(kwargs: dict, message: str) -> None:
    arguments = {"margins": np.array([0.1, 0.2, 0.3]), "features": np.ones((3, 2)), "n": 2, "seed": 0}
    arguments.update(kwargs)
    with pytest.raises(StrategyError, match=message):
        cluster_margin_select(
            arguments.pop("margins"),
            arguments.pop("features"),
            arguments.pop("n"),
            arguments.pop("seed"),
            **arguments,
        )
