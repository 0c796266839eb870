"""Ray Data scoring returns exactly the in-process selection."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from al_ray.config import ScoringConfig
from al_ray.data.pool import Pool
from al_ray.models import SklearnClassifier
from al_ray.scoring import score_pool
from al_ray.models.committee import Committee
from al_ray.strategies import STRATEGIES, Need, make_strategy

LOCAL = ScoringConfig(mode="local", batch_rows=128)
RAY = ScoringConfig(mode="ray", batch_rows=128, num_actors=2, actor_num_cpus=0.5)


def _pool_and_model(n_rows: int = 1500, n_features: int = 8, seed: int = 0, duplicates: bool = False):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_rows, n_features)).astype(np.float32)
    if duplicates:
        # Every row repeats one of 20 vectors, so utilities tie in large groups.
        features = features[rng.integers(0, 20, size=n_rows)]
    # Shuffled, non-contiguous ids: selection must follow row_id, not position.
    row_ids = rng.permutation(n_rows).astype(np.int64) * 7 + 1000
    labels = rng.integers(0, 3, size=200)
    model = SklearnClassifier(LogisticRegression(max_iter=200), ["a", "b", "c"]).fit(
        rng.normal(size=(200, n_features)).astype(np.float32), labels
    )
    return Pool(row_ids, features, num_blocks=6), model


def _committee(n_features: int = 8, seed: int = 0) -> Committee:
    rng = np.random.default_rng(seed + 100)
    members = [
        SklearnClassifier(LogisticRegression(max_iter=200, C=c), ["a", "b", "c"]).fit(
            rng.normal(size=(120, n_features)), rng.integers(0, 3, size=120)
        )
        for c in (0.1, 1.0, 10.0)
    ]
    return Committee(members)


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.selection.row_ids, b.selection.row_ids)
    np.testing.assert_allclose(a.selection.utilities, b.selection.utilities, rtol=0, atol=0)
    assert a.rows_scored == b.rows_scored


def _one_per_input_set() -> list[str]:
    """Return one strategy for each distinct set of scoring inputs, the first by name.

    Both paths score batches with the same strategy code, so strategies that
    read the same inputs take the same path through the Ray scorer, and each
    Ray Data pass costs 2 to 3 s to start its actor pool. A strategy with new
    inputs forms a new set and is tested here automatically.
    """
    chosen: dict[tuple, str] = {}
    for name in sorted(STRATEGIES):
        strategy = make_strategy(name)
        key = (
            frozenset(strategy.needs),
            frozenset(strategy.candidate_needs),
            frozenset(strategy.context_needs),
        )
        chosen.setdefault(key, name)
    return sorted(chosen.values())


@pytest.mark.parametrize("name", _one_per_input_set())
def test_ray_equals_local(ray_local, name):
    pool, model = _pool_and_model()
    strategy = make_strategy(name)
    if Need.COMMITTEE_PROBABILITIES in strategy.needs:
        model = _committee()
    excluded = pool.row_ids[::5]
    local = score_pool(pool, strategy, model, excluded, 40, 11, LOCAL)
    distributed = score_pool(pool, strategy, model, excluded, 40, 11, RAY)
    assert distributed.path == "ray"
    assert local.path == "local"
    _same(local, distributed)
    assert local.rows_scored == len(pool) - len(excluded)
    assert not np.isin(distributed.selection.row_ids, excluded).any()


def test_ray_n_larger_than_block(ray_local):
    # 1500 rows in 6 blocks of 250, batches of 128: n=700 spans many batches.
    pool, model = _pool_and_model()
    strategy = make_strategy("margin")
    local = score_pool(pool, strategy, model, np.empty(0, np.int64), 700, 3, LOCAL)
    distributed = score_pool(pool, strategy, model, np.empty(0, np.int64), 700, 3, RAY)
    assert len(distributed.selection) == 700
    _same(local, distributed)


def test_ray_ties_match_local(ray_local):
    pool, model = _pool_and_model(duplicates=True)
    strategy = make_strategy("entropy")
    local = score_pool(pool, strategy, model, np.empty(0, np.int64), 90, 5, LOCAL)
    distributed = score_pool(pool, strategy, model, np.empty(0, np.int64), 90, 5, RAY)
    # With 20 distinct vectors, the top 90 must cut through a tie group.
    assert len(np.unique(local.selection.utilities)) < 90
    _same(local, distributed)


def test_ray_empty_block(ray_local):
    import pyarrow as pa
    import ray.data
    from ray.data.extensions import ArrowTensorArray

    pool, model = _pool_and_model(n_rows=300)
    empty = pa.table(
        {
            "row_id": pa.array(np.empty(0, dtype=np.int64)),
            "features": ArrowTensorArray.from_numpy(np.empty((0, pool.n_features), dtype=np.float32)),
        }
    )
    full = pa.table(
        {"row_id": pa.array(pool.row_ids), "features": ArrowTensorArray.from_numpy(pool.features)}
    )
    pool._dataset = ray.data.from_arrow([empty, full, empty])
    strategy = make_strategy("least_confidence")
    local = score_pool(pool, strategy, model, np.empty(0, np.int64), 25, 1, LOCAL)
    distributed = score_pool(pool, strategy, model, np.empty(0, np.int64), 25, 1, RAY)
    _same(local, distributed)


def test_ray_block_fully_excluded(ray_local):
    pool, model = _pool_and_model(n_rows=600)
    strategy = make_strategy("margin")
    # The first 300 rows (more than one whole block) are excluded.
    excluded = pool.row_ids[:300]
    local = score_pool(pool, strategy, model, excluded, 30, 2, LOCAL)
    distributed = score_pool(pool, strategy, model, excluded, 30, 2, RAY)
    _same(local, distributed)
    assert distributed.rows_scored == 300


def test_ray_whole_pool_excluded(ray_local):
    pool, model = _pool_and_model(n_rows=200)
    result = score_pool(pool, make_strategy("margin"), model, pool.row_ids, 10, 0, RAY)
    assert len(result.selection) == 0
    assert result.rows_scored == 0


def test_ray_n_larger_than_pool(ray_local):
    pool, model = _pool_and_model(n_rows=150)
    result = score_pool(pool, make_strategy("random"), model, np.empty(0, np.int64), 500, 0, RAY)
    assert len(result.selection) == 150
    assert len(np.unique(result.selection.row_ids)) == 150


def test_auto_path_by_size(ray_local):
    pool, model = _pool_and_model(n_rows=300)
    strategy = make_strategy("margin")
    small = score_pool(pool, strategy, model, np.empty(0, np.int64), 5, 0, ScoringConfig(local_max_rows=300))
    large = score_pool(pool, strategy, model, np.empty(0, np.int64), 5, 0, ScoringConfig(local_max_rows=299))
    assert small.path == "local"
    assert large.path == "ray"
    _same(small, large)
