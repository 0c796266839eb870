"""Drift on the real elec2 stream, read in file order: known shifts flagged, stable data quiet."""

from __future__ import annotations

import numpy as np
import pytest

from al_ray.data import SHIPPED_DATASETS, load_shipped
from al_ray.monitoring.config import DriftConfig
from al_ray.monitoring.drift import DriftDetector

# Rows in file order, 48 per day. A window of 1008 rows is three weeks.
WEEKS_3 = 1008
VICTORIA = ("vicprice", "vicdemand", "transfer")
# The first row at which the Victoria columns and transfer leave their filled-in constants.
VICTORIA_START = 17_424
# The normalised date grows with time, so it is left out of every check here.
CONFIG = DriftConfig(exclude_features=["date"])


@pytest.fixture(scope="module")
def elec2():
    return load_shipped("elec2")


def _detector(data, start, stop, config=CONFIG):
    return DriftDetector(data.features[start:stop], data.feature_names, config)


def test_elec2_loads_in_file_order(elec2):
    assert len(elec2) == 45_312
    assert elec2.feature_names == ("date", "day", "period", "nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")
    assert elec2.classes == ("DOWN", "UP")
    np.testing.assert_array_equal(elec2.row_ids, np.arange(45_312))
    # Counts from PROVENANCE.md: DOWN 26,075, UP 19,237.
    assert np.bincount(elec2.labels).tolist() == [26_075, 19_237]
    # The first data line: 0,2,0,0.056443,0.439155,0.003467,0.422915,0.414912,UP
    np.testing.assert_allclose(elec2.features[0], [0, 2, 0, 0.056443, 0.439155, 0.003467, 0.422915, 0.414912], rtol=1e-6)
    assert elec2.label_names([0, 4]) == ["UP", "DOWN"]
    assert SHIPPED_DATASETS["elec2"].n_features == 8


def test_elec2_victoria_columns_constant_until_shift(elec2):
    for name in VICTORIA:
        column = elec2.features[:, elec2.feature_names.index(name)]
        assert np.all(column[:VICTORIA_START] == column[0])
        assert column[VICTORIA_START] != column[0]


def test_victoria_shift_flagged(elec2):
    detector = _detector(elec2, VICTORIA_START - 4 * WEEKS_3, VICTORIA_START)

    result = detector.check(elec2.features[VICTORIA_START:VICTORIA_START + WEEKS_3])

    assert result.drifted
    assert set(VICTORIA) <= set(result.drifted_features)
    for feature in result.features:
        assert feature.constant_reference == (feature.name in VICTORIA)
    assert detector.categorical_features == ("day",)


def test_victoria_quiet_before_shift(elec2):
    # Three weeks right before the shift: the Victoria columns hold their constants.
    detector = _detector(elec2, VICTORIA_START - 8 * WEEKS_3, VICTORIA_START - 4 * WEEKS_3)

    result = detector.check(elec2.features[VICTORIA_START - WEEKS_3:VICTORIA_START])

    assert not set(VICTORIA) & set(result.drifted_features)


@pytest.mark.parametrize(
    ("reference", "window", "direction"),
    [
        # Weekly median NSW price about 0.075 in rows 8,064-12,095, about 0.04 in rows 20,160-21,167.
        ((8_064, 12_096), (20_160, 21_168), -1),
        # About 0.03 in rows 30,240-34,271; the level rises from about row 36,900 (0.06-0.08 in rows 37,632-38,639).
        ((30_240, 34_272), (37_632, 38_640), 1),
    ],
)
def test_price_regime_shift_flagged(elec2, reference, window, direction):
    result = _detector(elec2, *reference).check(elec2.features[slice(*window)])

    price = next(feature for feature in result.features if feature.name == "nswprice")
    assert price.drifted
    assert price.psi > 0.25
    column = elec2.feature_names.index("nswprice")
    shift = np.median(elec2.features[slice(*window), column]) - np.median(elec2.features[slice(*reference), column])
    assert np.sign(shift) == direction


def test_window_against_itself_quiet(elec2):
    rows = elec2.features[30_240:34_272]

    result = _detector(elec2, 30_240, 34_272).check(rows)

    assert not result.drifted
    assert result.score == 0.0


def test_random_halves_of_stable_window_quiet(elec2):
    # Two halves of one six-week stretch, split by seeded permutations: the
    # rows of both halves come from the same time, so nothing moved.
    rows = elec2.features[30_240:32_256]
    alarms = 0
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(len(rows))
        half = len(rows) // 2
        detector = DriftDetector(rows[order[:half]], elec2.feature_names, CONFIG)
        alarms += detector.check(rows[order[half:]]).drifted

    # Holm at 0.05 allows about 1 of 20; measured: 1.
    assert alarms <= 2


def test_shuffled_stream_quiet(elec2):
    # The whole file in a seeded random order has no drift: 40 windows against a reference of 4 windows.
    order = np.random.default_rng(0).permutation(len(elec2))
    shuffled = elec2.features[order]
    detector = DriftDetector(shuffled[:4 * WEEKS_3], elec2.feature_names, CONFIG)
    checks = range(4 * WEEKS_3, len(shuffled) - WEEKS_3 + 1, WEEKS_3)

    alarms = sum(detector.check(shuffled[start:start + WEEKS_3]).drifted for start in checks)

    # Measured: 1 of 40.
    assert alarms <= 4
