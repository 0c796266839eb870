"""Trigger policies as pure decisions: thresholds, missing figures, cooldown and the watch config."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from al_ray.config import parse_config
from al_ray.errors import ConfigError
from al_ray.monitoring.triggers import (
    POLICIES,
    WindowFigures,
    cooldown_remaining_s,
    evaluate_policies,
    trigger_id,
)
from al_ray.monitoring.watch_config import TriggersConfig


def figures(**values) -> WindowFigures:
    return WindowFigures(window_id="w7", time_s=1000.0, **values)


def only(config: TriggersConfig, window: WindowFigures):
    (decision,) = evaluate_policies(config, window)
    return decision


@pytest.mark.parametrize(
    ("policy", "score", "share", "fired"),
    [
        ({"min_score": 0.25}, 0.25, 0.0, True),
        ({"min_score": 0.25}, 0.2499, 0.9, False),
        ({"min_drifted_share": 0.5}, 10.0, 0.5, True),
        ({"min_drifted_share": 0.5}, 10.0, 0.4999, False),
        ({"min_score": 1.0, "min_drifted_share": 0.5}, 0.1, 0.6, True),
        ({"min_score": 1.0, "min_drifted_share": 0.5}, 1.5, 0.1, True),
        ({"min_score": 1.0, "min_drifted_share": 0.5}, 0.1, 0.1, False),
    ],
)
def test_drift_policy_thresholds(policy, score, share, fired) -> None:
    decision = only(TriggersConfig(drift=policy), figures(drift_score=score, drift_share=share))

    assert decision.policy == "drift"
    assert decision.fired is fired
    assert decision.figures["score"] == score
    assert decision.figures["drifted_share"] == share


def test_drift_policy_without_check_does_not_fire() -> None:
    decision = only(TriggersConfig(drift={"min_score": 0.0}), figures())

    assert decision.fired is False
    assert "no drift check" in decision.reason


@pytest.mark.parametrize(
    ("policy", "mean", "q90", "fired"),
    [
        ({"mean_above": 0.5}, 0.5, 0.9, False),  # "above" is strict
        ({"mean_above": 0.5}, 0.51, 0.9, True),
        ({"q90_above": 0.8}, 0.1, 0.81, True),
        ({"q90_above": 0.8}, 0.9, 0.8, False),
        ({"mean_above": 0.5, "q90_above": 0.8}, 0.6, 0.7, True),
    ],
)
def test_uncertainty_policy_thresholds(policy, mean, q90, fired) -> None:
    decision = only(TriggersConfig(uncertainty=policy), figures(uncertainty_mean=mean, uncertainty_q90=q90))

    assert decision.fired is fired
    assert decision.figures["mean"] == mean
    assert decision.figures["q90"] == q90


@pytest.mark.parametrize(("count", "fired"), [(249, False), (250, True), (251, True)])
def test_uncertain_rows_policy_counts(count: int, fired: bool) -> None:
    decision = only(TriggersConfig(uncertain_rows={"count_at_least": 250}), figures(uncertain_rows=count))

    assert decision.fired is fired
    assert decision.figures == {"uncertain_rows": float(count), "count_at_least": 250.0}


@pytest.mark.parametrize(("version_time", "fired"), [(400.0, False), (399.0, True)])
def test_staleness_policy_age(version_time: float, fired: bool) -> None:
    # Window at t=1000 s; a version older than 600 s is stale.
    decision = only(TriggersConfig(staleness={"max_age_s": 600}), figures(version_time_s=version_time))

    assert decision.fired is fired
    assert decision.figures["age_s"] == 1000.0 - version_time


def test_staleness_without_version_time() -> None:
    decision = only(TriggersConfig(staleness={"max_age_s": 1}), figures(version_time_s=None))

    assert decision.fired is False


def test_policies_in_fixed_order() -> None:
    config = TriggersConfig(
        staleness={"max_age_s": 1},
        uncertain_rows={"count_at_least": 1},
        uncertainty={"mean_above": 0.1},
        drift={"min_score": 0.1},
    )
    window = figures(drift_score=1, drift_share=1, uncertainty_mean=1, uncertainty_q90=1, uncertain_rows=5, version_time_s=0)

    decisions = evaluate_policies(config, window)

    assert [decision.policy for decision in decisions] == list(POLICIES)
    assert all(decision.fired for decision in decisions)


def test_no_policy_gives_no_decision() -> None:
    assert evaluate_policies(TriggersConfig(), figures(drift_score=9, drift_share=1)) == []
    assert TriggersConfig().any_policy is False


def test_trigger_id_names_policy_and_window() -> None:
    assert trigger_id("drift", "replay-file:rows-0-100") == "drift@replay-file:rows-0-100"


@pytest.mark.parametrize(
    ("last", "now", "cooldown", "remaining"),
    [(None, 50.0, 100.0, 0.0), (0.0, 50.0, 100.0, 50.0), (0.0, 100.0, 100.0, 0.0), (0.0, 150.0, 100.0, 0.0), (0.0, 1.0, 0.0, 0.0)],
)
def test_cooldown_remaining(last, now, cooldown, remaining) -> None:
    assert cooldown_remaining_s(last, now, cooldown) == remaining


@given(
    score=st.floats(0, 100, allow_nan=False),
    share=st.floats(0, 1, allow_nan=False),
    threshold=st.floats(0, 100, allow_nan=False),
)
def test_drift_fires_monotone_in_score(score: float, share: float, threshold: float) -> None:
    config = TriggersConfig(drift={"min_score": threshold})
    lower = only(config, figures(drift_score=score, drift_share=share))
    higher = only(config, figures(drift_score=score + 1.0, drift_share=share))

    assert lower.fired == (score >= threshold)
    assert not lower.fired or higher.fired
    assert math.isfinite(lower.figures["score"])


def base_config(monitoring: dict) -> dict:
    return {"name": "t", "data": {"dataset": "elec2"}, "monitoring": monitoring}


@pytest.mark.parametrize(
    ("monitoring", "message"),
    [
        ({"triggers": {"drift": {}}}, "set min_score, min_drifted_share or both"),
        ({"triggers": {"uncertainty": {}}}, "set mean_above, q90_above or both"),
        ({"triggers": {"uncertain_rows": {"count_at_least": 0}}}, "count_at_least"),
        ({"triggers": {"cooldown_s": -1}}, "cooldown_s"),
        ({"watch": {"rounds": {"mode": "submit"}}}, "mode submit needs address"),
        ({"watch": {"rounds": {"address": "http://127.0.0.1:8265"}}}, "address is for mode submit"),
        ({"watch": {"source": {"kind": "replay", "path": "x.db"}}}, "source.path is for kind feedback"),
        ({"watch": {"backoff_initial_s": 10, "backoff_max_s": 1}}, "raise backoff_max_s"),
        ({"triggers": {"drift": {"min_score": 1}, "staleness": {"max_age": 5}}}, "unknown key"),
    ],
)
def test_watch_config_rejects(monitoring: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(base_config(monitoring))


def test_watch_config_accepts_full_example() -> None:
    config = parse_config(
        base_config(
            {
                "triggers": {
                    "drift": {"min_drifted_share": 0.5},
                    "uncertainty": {"q90_above": 0.9},
                    "uncertain_rows": {"count_at_least": 100, "min_uncertainty": 0.4},
                    "staleness": {"max_age_s": 86400},
                    "cooldown_s": 3600,
                },
                "watch": {
                    "source": {"kind": "replay", "order": "shuffled", "seconds_per_row": 1800},
                    "rounds": {"mode": "submit", "address": "http://127.0.0.1:8265"},
                    "reference": "recent_traffic",
                },
            }
        )
    )

    assert config.monitoring.triggers.uncertain_rows.min_uncertainty == 0.4
    assert config.monitoring.watch.rounds.mode == "submit"


def test_unfired_reasons_name_thresholds() -> None:
    drift = only(
        TriggersConfig(drift={"min_score": 1.0, "min_drifted_share": 0.5}), figures(drift_score=0.25, drift_share=0.2)
    )
    uncertainty = only(TriggersConfig(uncertainty={"mean_above": 0.5}), figures(uncertainty_mean=0.4, uncertainty_q90=0.7))

    assert drift.reason == "drift score 0.25 < 1; drifted share 0.2 < 0.5"
    assert uncertainty.reason == "mean uncertainty 0.4 <= 0.5"
