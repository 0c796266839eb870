"""DriftDetector: power and false alarms on seeded data, bad input, predictions and uncertainty."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from al_ray.errors import AlRayError
from al_ray.monitoring.config import DriftConfig
from al_ray.monitoring.drift import DriftDetector
from al_ray.monitoring.errors import DriftError
from al_ray.monitoring.windows import CountWindow

NAMES = ("a", "b", "c", "d", "e")

# The configured power: a mean shift of half a standard deviation in one of
# five features, 500 reference rows against 200 window rows, Holm at 0.05.
EFFECT_SD = 0.5
N_REFERENCE = 500
N_WINDOW = 200
TRIALS = 300


def _normal(rng, rows, columns=5):
    return rng.normal(size=(rows, columns))


def _rates(config: DriftConfig) -> tuple[float, float]:
    detections = false_alarms = 0
    for trial in range(TRIALS):
        rng = np.random.default_rng([17, trial])
        detector = DriftDetector(_normal(rng, N_REFERENCE), NAMES, config)
        shifted = _normal(rng, N_WINDOW)
        shifted[:, 2] += EFFECT_SD
        result = detector.check(shifted)
        detections += result.drifted and result.drifted_features == ("c",)
        false_alarms += detector.check(_normal(rng, N_WINDOW)).drifted
    return detections / TRIALS, false_alarms / TRIALS


def test_mean_shift_power_and_false_alarms():
    power, false_alarm_rate = _rates(DriftConfig())

    # Measured with these seeds: power 0.957, false alarm rate 0.060 (0.036 over 1000 other seeds).
    assert power >= 0.8
    # 0.05 plus three binomial standard errors of 300 trials: Holm keeps the family-wise rate at 0.05.
    assert false_alarm_rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / TRIALS)


def test_window_against_itself_is_quiet():
    reference = _normal(np.random.default_rng(0), 300)
    result = DriftDetector(reference, NAMES, DriftConfig()).check(reference)

    assert not result.drifted
    assert result.drift_share == 0.0
    assert all(feature.statistic == 0.0 for feature in result.features)
    assert all(feature.p_value == 1.0 for feature in result.features)
    assert result.score == 0.0


def test_categorical_autodetect_and_chi2():
    rng = np.random.default_rng(1)
    reference = np.column_stack([rng.normal(size=400), rng.integers(1, 8, size=400)])
    detector = DriftDetector(reference, ("x", "day"), DriftConfig())
    window = np.column_stack([rng.normal(size=200), np.full(200, 3)])

    result = detector.check(window)

    assert detector.categorical_features == ("day",)
    assert [feature.test for feature in result.features] == ["ks", "chi2"]
    assert result.drifted_features == ("day",)


def test_categorical_list_and_psi_tests():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(400, 2))
    config = DriftConfig(
        categorical_features=[], numeric_test="psi", psi_threshold=0.25, exclude_features=["b"]
    )
    window = reference[:200] + np.array([2.0, 0.0])

    result = DriftDetector(reference, ("a", "b"), config).check(window)

    assert [feature.name for feature in result.features] == ["a"]
    assert result.features[0].test == "psi"
    assert result.features[0].p_value is None
    assert result.features[0].statistic == result.features[0].psi
    assert result.drifted_features == ("a",)
    assert result.excluded_features == ("b",)


def test_min_drifted_share():
    rng = np.random.default_rng(3)
    reference = _normal(rng, 400)
    window = _normal(rng, 200)
    window[:, 0] += 2.0

    loose = DriftDetector(reference, NAMES, DriftConfig()).check(window)
    strict = DriftDetector(reference, NAMES, DriftConfig(min_drifted_share=0.5)).check(window)

    assert loose.drifted_features == strict.drifted_features == ("a",)
    assert loose.drifted
    assert not strict.drifted


def test_constant_reference_feature(caplog):
    rng = np.random.default_rng(4)
    reference = np.column_stack([rng.normal(size=300), np.full(300, 0.003467, dtype=np.float32)]).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="al_ray.monitoring.drift"):
        detector = DriftDetector(reference, ("x", "vic"), DriftConfig())
    # The same constant, sent as float64 by a client, is no change.
    same = np.column_stack([reference[:100, 0], np.full(100, 0.003467, dtype=np.float64)])
    varying = np.column_stack([reference[:100, 0], rng.uniform(0, 0.01, size=100)])

    quiet = detector.check(same)
    moved = detector.check(varying)

    assert "feature 'vic' is constant (0.003467) in the reference" in caplog.text
    assert not quiet.drifted
    assert quiet.features[1].constant_reference
    assert quiet.features[1].p_value == 1.0
    assert quiet.features[1].psi == 0.0
    assert moved.drifted_features == ("vic",)


def test_mapping_and_dataframe_windows():
    rng = np.random.default_rng(5)
    reference = _normal(rng, 300)
    detector = DriftDetector(reference, NAMES, DriftConfig(exclude_features=["e"]))
    columns = {name: reference[:100, index] for index, name in enumerate(NAMES[:4])}
    columns["extra"] = np.zeros(100)

    from_dict = detector.check(columns)
    from_frame = detector.check(pd.DataFrame(columns))

    assert from_dict.to_dict() == from_frame.to_dict()
    assert [feature.name for feature in from_dict.features] == ["a", "b", "c", "d"]


def test_prediction_and_uncertainty_drift():
    rng = np.random.default_rng(6)
    reference = _normal(rng, 400)
    reference_predictions = np.array(["UP"] * 200 + ["DOWN"] * 200)
    reference_uncertainty = rng.uniform(0, 0.4, size=400)
    detector = DriftDetector(
        reference,
        NAMES,
        DriftConfig(uncertainty_quantiles=[0.5, 0.9]),
        reference_predictions=reference_predictions,
        reference_uncertainty=reference_uncertainty,
    )
    window_uncertainty = np.linspace(0.0, 1.0, 101)

    result = detector.check(
        reference[:101], predictions=np.array(["UP"] * 90 + ["DOWN"] * 11), uncertainty=window_uncertainty
    )

    assert result.prediction_drift.drifted
    assert result.prediction_drift.classes == ("DOWN", "UP")
    assert result.prediction_drift.window_shares == pytest.approx((11 / 101, 90 / 101))
    assert result.drifted
    assert not result.feature_drifted
    uncertainty = result.uncertainty_drift
    assert uncertainty.mean == pytest.approx(0.5)
    assert uncertainty.quantiles == pytest.approx({0.5: 0.5, 0.9: 0.9})
    assert uncertainty.q90 == pytest.approx(0.9)
    assert uncertainty.reference_mean == pytest.approx(reference_uncertainty.mean())
    assert uncertainty.mean_increase == pytest.approx(0.5 - reference_uncertainty.mean())


def test_probabilities_as_predictions():
    rng = np.random.default_rng(7)
    reference = _normal(rng, 200)
    probabilities = rng.dirichlet([1, 1, 1], size=200)
    detector = DriftDetector(reference, NAMES, DriftConfig(), reference_predictions=probabilities)

    result = detector.check(reference[:100], predictions=probabilities[:100])

    assert result.prediction_drift.classes == ("0", "1", "2")
    assert not result.prediction_drift.drifted


def test_to_dict_is_json():
    rng = np.random.default_rng(8)
    detector = DriftDetector(_normal(rng, 200), NAMES, DriftConfig(), reference_uncertainty=rng.uniform(size=200))
    result = detector.check(_normal(rng, 100) + 1.0, uncertainty=rng.uniform(size=100), label="rows 0-99")

    decoded = json.loads(json.dumps(result.to_dict()))

    assert decoded["label"] == "rows 0-99"
    assert decoded["drifted"] is True
    assert decoded["drift_share"] == 1.0
    assert len(decoded["features"]) == 5
    assert decoded["uncertainty_drift"]["quantiles"].keys() == {"0.9", "0.99"}
    assert "drifted=True" in result.summary()


def test_check_window_uses_window_fields():
    rng = np.random.default_rng(9)
    features = _normal(rng, 250)
    detector = DriftDetector(features, NAMES, DriftConfig(), reference_uncertainty=np.full(250, 0.1))
    windows = CountWindow(100).add(features, uncertainty=np.full(250, 0.3))

    result = detector.check_window(windows[1])

    assert result.label == "window 1 (rows 100-199)"
    assert result.n_window == 100
    assert result.uncertainty_drift.mean == pytest.approx(0.3)


# Bad input.


@pytest.fixture
def detector():
    return DriftDetector(_normal(np.random.default_rng(10), 200), NAMES, DriftConfig(min_window_rows=10))


def test_empty_window(detector):
    with pytest.raises(DriftError, match=r"the live window rows 5-4 is empty: it has no rows to test\."):
        detector.check(np.empty((0, 5)), label="rows 5-4")


def test_wrong_width(detector):
    with pytest.raises(DriftError, match=r"the live window has 4 columns, but the reference has 5 \(a, b, c, d, e\)"):
        detector.check(np.zeros((20, 4)))


def test_one_dimensional_window(detector):
    with pytest.raises(DriftError, match=r"must be a 2-D array of shape \(n_rows, 5\), got shape \(20,\)"):
        detector.check(np.zeros(20))


def test_missing_feature_named(detector):
    columns = {name: np.zeros(20) for name in ("a", "b", "d")}

    with pytest.raises(DriftError, match=r"the live rows miss the tested features c, e; send every feature"):
        detector.check(columns)


def test_nan_rows_raise(detector):
    window = _normal(np.random.default_rng(11), 30)
    window[[3, 7], 1] = np.nan
    window[9, 4] = np.inf

    with pytest.raises(DriftError, match=r"3 of 30 live rows contain NaN or infinite values \(rows at positions 3, 7, 9; features b, e\)"):
        detector.check(window)


def test_nan_rows_dropped_and_counted():
    rng = np.random.default_rng(12)
    detector = DriftDetector(_normal(rng, 200), NAMES, DriftConfig(nan_policy="drop", min_window_rows=10))
    window = _normal(rng, 30)
    window[[3, 7], 1] = np.nan

    result = detector.check(window, uncertainty=np.arange(30, dtype=float))

    assert result.rows_dropped == 2
    assert result.n_window == 28
    assert result.uncertainty_drift.mean == pytest.approx((435 - 3 - 7) / 28)


def test_nan_in_excluded_feature_ignored():
    rng = np.random.default_rng(13)
    detector = DriftDetector(_normal(rng, 200), NAMES, DriftConfig(exclude_features=["e"], min_window_rows=10))
    window = _normal(rng, 30)
    window[:, 4] = np.nan

    assert detector.check(window).rows_dropped == 0


def test_too_few_rows(detector):
    with pytest.raises(DriftError, match=r"has 9 usable rows, fewer than min_window_rows \(10\)"):
        detector.check(np.zeros((9, 5)))


def test_non_numeric_window(detector):
    with pytest.raises(DriftError, match="the live window must be numeric, got dtype <U1"):
        detector.check(np.full((20, 5), "x"))


def test_predictions_without_reference(detector):
    with pytest.raises(DriftError, match="the detector has no reference_predictions"):
        detector.check(np.zeros((20, 5)), predictions=np.zeros(20))


def test_predictions_wrong_length(detector):
    with pytest.raises(DriftError, match=r"predictions must have shape \(20,\)"):
        detector.check(np.zeros((20, 5)), predictions=np.zeros(19))


@pytest.mark.parametrize(
    ("reference", "names", "config", "message"),
    [
        (np.zeros(10), NAMES, DriftConfig(), r"a 2-D array of at least 2 rows and 1 feature, got shape \(10,\)"),
        (np.zeros((1, 5)), NAMES, DriftConfig(), r"got shape \(1, 5\)"),
        (np.array([[0.0] * 5, [np.nan] * 5]), NAMES, DriftConfig(), r"the reference contains NaN or infinite values in 1 rows \(positions 1\)"),
        (np.zeros((5, 5)), NAMES[:4], DriftConfig(), "the reference has 5 columns but 4 feature names"),
        (np.zeros((5, 5)), ("a", "a", "b", "c", "d"), DriftConfig(), "feature names must be unique, got repeats: a"),
        (np.zeros((5, 5)), NAMES, DriftConfig(exclude_features=["date"]), r"exclude_features names features the reference does not have: date; the features are a, b, c, d, e"),
        (np.zeros((5, 5)), NAMES, DriftConfig(categorical_features=["z"]), "categorical_features names features the reference does not have: z"),
        (np.zeros((5, 5)), NAMES, DriftConfig(exclude_features=list(NAMES)), "every feature is in exclude_features"),
    ],
)
def test_bad_reference(reference, names, config, message):
    with pytest.raises(DriftError, match=message):
        DriftDetector(reference, names, config)


def test_drift_error_is_al_ray_error():
    assert issubclass(DriftError, AlRayError)
