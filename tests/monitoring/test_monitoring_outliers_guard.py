"""The outlier guard: injected far-away rows are held back, normal rows are not."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from al_ray.config import parse_config
from al_ray.data import LabeledData
from al_ray.errors import ConfigError
from al_ray.monitoring.config import OutlierConfig
from al_ray.monitoring.errors import OutlierError
from al_ray.monitoring.outliers import (
    OutlierGuard,
    hold_back_for_round,
    hold_back_outliers,
)

N_FEATURES = 8


def _pool(seed: int, n_normal: int, n_far: int):
    """Normal rows N(0, 1) and far rows 8 standard deviations out in every feature, ids shuffled."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n_normal, N_FEATURES))
    far = rng.normal(size=(n_far, N_FEATURES)) * 0.5 + rng.choice([-8.0, 8.0], size=(n_far, N_FEATURES))
    features = np.concatenate([normal, far])
    row_ids = rng.permutation(len(features)).astype(np.int64) + 100
    return row_ids, features, row_ids[n_normal:]


def _batches(row_ids, features, size=256):
    for start in range(0, len(row_ids), size):
        yield row_ids[start:start + size], features[start:start + size]


def _fit(seed=0, config=None):
    rows = np.random.default_rng(seed + 1000).normal(size=(2000, N_FEATURES))
    return OutlierGuard(config or OutlierConfig(enabled=True)).fit(rows, seed=seed)


def test_far_rows_held_back_normal_rows_kept():
    guard = _fit()
    row_ids, features, far_ids = _pool(1, n_normal=5000, n_far=100)

    held = hold_back_outliers(guard, _batches(row_ids, features), np.empty(0, np.int64))

    far_caught = np.isin(far_ids, held.row_ids).mean()
    normal_flagged = (held.row_ids.size - np.isin(held.row_ids, far_ids).sum()) / 5000
    # Measured: every far row held back, and 1 normal row of 5000.
    assert far_caught == 1.0
    assert normal_flagged <= 0.002
    assert held.n_candidates == 5100
    assert held.n_flagged == held.row_ids.size
    assert not held.capped
    assert held.metrics()["outliers_held_back"] == held.row_ids.size
    assert held.metrics()["outliers_held_back_share"] == pytest.approx(held.row_ids.size / 5100)
    assert np.all(np.diff(held.row_ids) > 0)


def test_flag_mask_matches_scores():
    guard = _fit()
    row_ids, features, far_ids = _pool(2, n_normal=300, n_far=10)

    mask = guard.flag(features)
    scores = guard.anomaly_scores(features)

    np.testing.assert_array_equal(mask, scores > 0.6)
    assert np.all((scores > 0) & (scores <= 1))
    assert np.all(mask[np.isin(row_ids, far_ids)])


def test_excluded_rows_not_counted():
    guard = _fit()
    row_ids, features, far_ids = _pool(3, n_normal=500, n_far=20)
    excluded = np.concatenate([far_ids[:5], row_ids[:50]])

    held = hold_back_outliers(guard, _batches(row_ids, features), excluded)

    assert held.n_candidates == len(row_ids) - len(np.unique(excluded))
    assert not np.isin(held.row_ids, excluded).any()
    assert set(far_ids[5:]) - set(row_ids[:50]) <= set(held.row_ids.tolist())


def test_cap_holds_back_most_anomalous(caplog):
    guard = _fit(config=OutlierConfig(enabled=True, max_share_held_back=0.05))
    row_ids, features, far_ids = _pool(4, n_normal=700, n_far=300)

    with caplog.at_level(logging.WARNING, logger="al_ray.monitoring.outliers"):
        held = hold_back_outliers(guard, _batches(row_ids, features), np.empty(0, np.int64))

    assert held.capped
    assert held.row_ids.size == 50  # floor(0.05 * 1000)
    assert held.n_flagged >= 300
    assert np.isin(held.row_ids, far_ids).all()
    scores = dict(zip(row_ids.tolist(), guard.anomaly_scores(features).tolist()))
    lowest_kept = min(scores[row_id] for row_id in held.row_ids.tolist())
    left_out = [scores[row_id] for row_id in far_ids.tolist() if row_id not in set(held.row_ids.tolist())]
    assert lowest_kept >= max(left_out)
    assert "flagged" in caplog.text
    assert "max_share_held_back 0.05" in caplog.text
    assert held.metrics()["outliers_capped"] == 1.0


def test_contamination_threshold_from_fit_rows():
    rows = np.random.default_rng(5).normal(size=(2000, N_FEATURES))
    guard = OutlierGuard(OutlierConfig(enabled=True, contamination=0.02)).fit(rows, seed=5)

    assert guard.flag(rows).mean() == pytest.approx(0.02, abs=0.002)


def test_same_seed_same_rows_held_back():
    row_ids, features, _ = _pool(6, n_normal=800, n_far=20)
    config = OutlierConfig(enabled=True, score_threshold=0.55)

    first = hold_back_outliers(_fit(7, config), _batches(row_ids, features), np.empty(0, np.int64))
    again = hold_back_outliers(_fit(7, config), _batches(row_ids, features, size=97), np.empty(0, np.int64))

    np.testing.assert_array_equal(first.row_ids, again.row_ids)


def _dataset(n_normal=600, n_far=12):
    row_ids, features, far_ids = _pool(8, n_normal=n_normal, n_far=n_far)
    order = np.argsort(row_ids)
    return (
        LabeledData(
            name="synthetic",
            row_ids=row_ids[order],
            features=features[order],
            labels=np.zeros(len(row_ids), dtype=np.int64),
            classes=("a",),
            feature_names=tuple(f"x{i}" for i in range(N_FEATURES)),
        ),
        far_ids,
    )


def test_round_guard_catches_far_rows():
    data, far_ids = _dataset()
    queried = data.row_ids[~np.isin(data.row_ids, far_ids)][:30]
    batches = list(_batches(data.row_ids, data.features))

    held = hold_back_for_round(
        OutlierConfig(enabled=True, reference_rows=300), data, data.row_ids, batches, queried, seed=11, round_index=2
    )

    assert set(held.row_ids.tolist()) >= set(far_ids.tolist())
    assert held.n_candidates == len(data) - 30


def test_round_guard_too_few_rows(caplog):
    data, _ = _dataset()
    config = OutlierConfig(enabled=True, fit_on="labeled", min_fit_rows=20)

    with caplog.at_level(logging.WARNING, logger="al_ray.monitoring.outliers"):
        held = hold_back_for_round(
            config, data, data.row_ids, _batches(data.row_ids, data.features), data.row_ids[:5], seed=1, round_index=1
        )

    assert held is None
    assert "round 1: the outlier guard has 5 rows to fit on, fewer than min_fit_rows 20" in caplog.text


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: OutlierGuard(OutlierConfig()).flag(np.zeros((3, 2))), "the outlier guard is not fit yet"),
        (lambda: OutlierGuard(OutlierConfig()).fit(np.zeros((1, 2)), seed=0), "needs at least 2 rows to fit, got 1"),
        (lambda: OutlierGuard(OutlierConfig()).fit(np.array([[0.0], [np.nan]]), seed=0), "contain NaN or infinite values"),
        (lambda: _fit().flag(np.zeros((3, 2))), "rows have 2 features, but the outlier guard was fit on 8"),
        (lambda: _fit().flag(np.zeros(8)), r"must be a 2-D array \(n_rows, n_features\), got shape \(8,\)"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(OutlierError, match=message):
        call()


def test_config_defaults_off_and_validation():
    config = parse_config({"name": "t", "data": {"dataset": "elec2"}})

    assert config.monitoring.outliers.enabled is False
    with pytest.raises(ConfigError, match="set either score_threshold or contamination, not both"):
        parse_config(
            {"name": "t", "data": {"dataset": "elec2"},
             "monitoring": {"outliers": {"score_threshold": 0.7, "contamination": 0.01}}}
        )
    with pytest.raises(ConfigError, match="max_share_held_back"):
        parse_config({"name": "t", "data": {"dataset": "elec2"}, "monitoring": {"outliers": {"max_share_held_back": 0}}})
