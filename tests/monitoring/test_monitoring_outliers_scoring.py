"""The outlier guard before selection: same rows on both scoring paths, and in the loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from al_ray.config import ScoringConfig, load_config
from al_ray.data.pool import Pool
from al_ray.labels import LabelStore
from al_ray.loop import ActiveLearningLoop
from al_ray.models import SklearnClassifier
from al_ray.monitoring.config import OutlierConfig
from al_ray.monitoring.outliers import OutlierGuard, hold_back_outliers
from al_ray.scoring import score_pool
from al_ray.strategies import make_strategy

pytestmark = pytest.mark.slow

LOCAL = ScoringConfig(mode="local", batch_rows=128)
RAY = ScoringConfig(mode="ray", batch_rows=128, num_actors=2, actor_num_cpus=0.5)
N_FEATURES = 6


def _rows(rng, n_normal, n_far):
    normal = rng.normal(size=(n_normal, N_FEATURES))
    far = rng.normal(size=(n_far, N_FEATURES)) * 0.3 + 9.0
    return np.concatenate([normal, far]).astype(np.float32)


def test_guard_same_selection_local_and_ray(ray_local):
    rng = np.random.default_rng(0)
    features = _rows(rng, 1500, 30)
    row_ids = rng.permutation(len(features)).astype(np.int64) * 3 + 7
    far_ids = row_ids[1500:]
    pool = Pool(row_ids, features, num_blocks=6)
    labeled = rng.normal(size=(60, N_FEATURES)).astype(np.float32)
    model = SklearnClassifier(LogisticRegression(max_iter=200), ["a", "b"]).fit(labeled, np.arange(60) % 2)
    strategy = make_strategy("kcenter")
    excluded = row_ids[:40]
    guard = OutlierGuard(OutlierConfig(enabled=True)).fit(
        np.concatenate([labeled, features[rng.choice(1500, 500, replace=False)]]), seed=3
    )

    held = hold_back_outliers(guard, pool.iter_local_batches(128), excluded)
    guarded = np.union1d(excluded, held.row_ids)
    local = score_pool(pool, strategy, model, guarded, 25, 11, LOCAL)
    distributed = score_pool(pool, strategy, model, guarded, 25, 11, RAY)
    unguarded = score_pool(pool, strategy, model, excluded, 25, 11, LOCAL)

    assert set(far_ids[~np.isin(far_ids, excluded)].tolist()) <= set(held.row_ids.tolist())
    assert distributed.path == "ray"
    np.testing.assert_array_equal(local.selection.row_ids, distributed.selection.row_ids)
    np.testing.assert_array_equal(local.selection.utilities, distributed.selection.utilities)
    assert not np.isin(local.selection.row_ids, far_ids).any()
    assert local.rows_scored == len(pool) - len(guarded)
    # Without the guard, k-center picks the far rows first: they are farthest from everything.
    assert np.isin(unguarded.selection.row_ids, far_ids).sum() >= 1


def _write_dataset(folder):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, size=600)
    normal = rng.normal(size=(600, N_FEATURES)) + labels[:, None]
    # Each far row sits at its own corner, 12 out in every feature, so no far row is near another.
    far = rng.choice([-12.0, 12.0], size=(12, N_FEATURES))
    frame = pd.DataFrame(np.concatenate([normal, far]), columns=[f"x{i}" for i in range(N_FEATURES)])
    frame["label"] = np.concatenate([labels, rng.integers(0, 2, size=12)]).astype(str)
    path = folder / "data.csv"
    frame.to_csv(path, index=False)
    # Without row_id_column the row_id is the row number, so the far rows are 600-611.
    return path, np.arange(600, 612)


def _run(folder, data_path, guard: bool):
    import yaml

    config = {
        "name": "guarded",
        "seed": 5,
        "data": {"path": str(data_path), "label_column": "label", "initial_labeled": 20, "test_size": 100},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 200}, "fit_on": "driver"},
        "strategy": {"name": "kcenter"},
        "loop": {"rounds": 2, "batch_size": 10},
        "scoring": {"mode": "local"},
        "tracking": {"enabled": False},
        "monitoring": {"outliers": {"enabled": guard, "reference_rows": 300}},
    }
    path = folder / f"config_{guard}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    output = folder / f"out_{guard}"
    ActiveLearningLoop(load_config(path), output_dir=output).run()
    with LabelStore(output / "labels.db") as store:
        queried = np.array([task.row_id for task in store.tasks() if task.round_index >= 1])
        metrics = {row["round_index"]: row["metrics"] for row in store.round_records()}
    return queried, metrics


def test_loop_guard_keeps_far_rows_out_of_queries(tmp_path):
    data_path, far_ids = _write_dataset(tmp_path)

    guarded, guarded_metrics = _run(tmp_path, data_path, guard=True)
    plain, plain_metrics = _run(tmp_path, data_path, guard=False)

    assert not np.isin(guarded, far_ids).any()
    assert np.isin(plain, far_ids).any()
    for round_index in (1, 2):
        metrics = guarded_metrics[round_index]
        assert metrics["outliers_held_back"] >= 1
        # The rows scored are the candidates the guard left, so the share's base is their sum.
        candidates = metrics["scoring_rows"] + metrics["outliers_held_back"]
        assert metrics["outliers_held_back_share"] == pytest.approx(metrics["outliers_held_back"] / candidates)
        assert "outliers_held_back" not in plain_metrics[round_index]
    assert "outliers_held_back" not in guarded_metrics[0]
