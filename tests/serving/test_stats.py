"""Stats windows: counters, latency percentiles and the /stats shape."""

from __future__ import annotations

import pytest

from al_ray.serving.stats import LATENCY_SAMPLES, StatsWindow, VersionStats


def test_percentiles_linear():
    stats = VersionStats("3")
    for latency in range(1, 101):
        stats.add_latency(float(latency))
    body = stats.to_json()
    # Linear interpolation over 1..100: rank 0.5 * 99 = 49.5 and 0.95 * 99 = 94.05.
    assert body["latency_ms"]["p50"] == pytest.approx(50.5)
    assert body["latency_ms"]["p95"] == pytest.approx(95.05)
    assert body["latency_ms"]["count"] == 100


def test_percentiles_empty_are_none():
    assert VersionStats("3").to_json()["latency_ms"] == {"p50": None, "p95": None, "count": 0}


def test_latency_samples_bounded():
    stats = VersionStats("3")
    for _ in range(LATENCY_SAMPLES + 5):
        stats.add_latency(1.0)
    assert len(stats.latencies_ms) == LATENCY_SAMPLES
    assert stats.to_json()["latency_ms"]["count"] == LATENCY_SAMPLES + 5


def test_window_shape():
    window = StatsWindow(4, {"champion": 0.9, "challenger": 0.1}, started=1700000000.0)
    champion = window.of("3")
    champion.requests, champion.errors, champion.rows = 9, 1, 20
    champion.compared, champion.agreed = 10, 8
    champion.labeled, champion.correct = 5, 4
    body = window.to_json({"champion": "3", "challenger": None})
    assert body == {
        "window": 4,
        "window_started": 1700000000.0,
        "weights": {"champion": 0.9, "challenger": 0.1},
        "versions": {
            "champion": {
                "version": "3",
                "requests": 9,
                "errors": 1,
                "rows": 20,
                "latency_ms": {"p50": None, "p95": None, "count": 0},
                "agreement": {"compared": 10, "agreed": 8},
                "feedback": {"labeled": 5, "correct": 4},
            },
            "challenger": None,
        },
    }


def test_window_of_creates_once():
    window = StatsWindow(1, {"champion": 1.0, "challenger": 0.0})
    assert window.of("3") is window.of("3")
