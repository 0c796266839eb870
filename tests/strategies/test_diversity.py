"""The contract every batch-diversity selector keeps: distinct int64 positions, min(n, m) of them."""

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from al_ray.errors import StrategyError
from al_ray.strategies import diversity
from al_ray.strategies.diversity import badge_select, cluster_margin_select, greedy_k_center


def select_core_set(features: np.ndarray, n: int, seed: int) -> np.ndarray:
    return greedy_k_center(features, features[:2], n)


def select_badge(features: np.ndarray, n: int, seed: int) -> np.ndarray:
    return badge_select(features[:, :2], features, n, seed)


def select_cluster_margin(features: np.ndarray, n: int, seed: int) -> np.ndarray:
    return cluster_margin_select(features[:, 0], features, n, seed)


SELECTORS: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "core-set": select_core_set,
    "badge": select_badge,
    "cluster-margin": select_cluster_margin,
}


@pytest.fixture(params=sorted(SELECTORS))
def select(request: pytest.FixtureRequest) -> Callable[[np.ndarray, int, int], np.ndarray]:
    return SELECTORS[request.param]


def test_diversity_exports() -> None:
    assert sorted(diversity.__all__) == [
        "badge_select",
        "cluster_margin_select",
        "default_cluster_count",
        "greedy_k_center",
        "information_density",
    ]
    for name in diversity.__all__:
        assert callable(getattr(diversity, name))


def test_selector_all_rows_identical(select) -> None:
    features = np.full((40, 3), 0.25)
    picks = select(features, 25, 0)
    assert picks.dtype == np.int64
    assert len(picks) == 25
    assert len(np.unique(picks)) == 25


def test_selector_n_above_m(select) -> None:
    features = np.random.default_rng(0).standard_normal((7, 3))
    assert sorted(select(features, 100, 0).tolist()) == list(range(7))


def test_selector_n_zero(select) -> None:
    picks = select(np.ones((5, 3)), 0, 0)
    assert picks.shape == (0,)
    assert picks.dtype == np.int64


def test_selector_negative_n(select) -> None:
    with pytest.raises(StrategyError, match=r"n must be an integer >= 0, got -1"):
        select(np.ones((5, 3)), -1, 0)


@settings(deadline=None, max_examples=40)
@given(
    features=hnp.arrays(
        np.float64,
        st.tuples(st.integers(2, 30), st.just(3)),
        elements=st.sampled_from([-2.0, 0.0, 1.0, 3.0]),
    ),
    n=st.integers(0, 35),
    seed=st.integers(0, 2**32),
    name=st.sampled_from(sorted(SELECTORS)),
)
def test_selector_distinct_positions(features: np.ndarray, n: int, seed: int, name: str) -> None:
    picks = SELECTORS[name](features, n, seed)
    assert picks.dtype == np.int64
    assert len(picks) == min(n, len(features))
    assert len(np.unique(picks)) == len(picks)
    assert np.all((picks >= 0) & (picks < len(features)))
