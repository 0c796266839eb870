"""Trigger policies: pure decisions over one live window's figures.

Each configured policy returns one :class:`Decision` per window, fired or not,
with the figures behind it and a reason in words. Nothing here reads a clock,
a store or a model, so the same figures always give the same decisions. The
watcher owns the state: the cooldown, and which triggers already started a round.

A trigger is one policy firing on one window. Its id, ``"<policy>@<window id>"``,
is what the watcher's state store keeps so that no trigger starts two rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from al_ray.monitoring.watch_config import (
    DriftTriggerConfig,
    StalenessTriggerConfig,
    TriggersConfig,
    UncertainRowsTriggerConfig,
    UncertaintyTriggerConfig,
)

__all__ = [
    "POLICIES",
    "Decision",
    "WindowFigures",
    "cooldown_remaining_s",
    "evaluate_policies",
    "trigger_id",
]

POLICIES = ("drift", "uncertainty", "uncertain_rows", "staleness")
"""Policy names, in the order their decisions are returned."""


@dataclass(frozen=True)
class WindowFigures:
    """The figures of one live window that the policies read; None where not measured.

    Times are in the live source's clock, in seconds: wall-clock time for
    served traffic, replay time for a replayed dataset.
    """

    window_id: str
    time_s: float
    """Time of the window's last row."""
    drift_score: float | None = None
    drift_share: float | None = None
    """Share of features the drift check flagged, in [0, 1]."""
    uncertainty_mean: float | None = None
    uncertainty_q90: float | None = None
    uncertain_rows: int = 0
    """Uncertain rows that arrived since the live version was trained, this window included."""
    version_time_s: float | None = None
    """Time the live version was trained, in the source's clock."""


@dataclass(frozen=True)
class Decision:
    """One policy's verdict on one window."""

    policy: str
    fired: bool
    figures: dict[str, float] = field(default_factory=dict)
    """The measured values and the thresholds they were compared with."""
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "fired": self.fired, "figures": dict(self.figures), "reason": self.reason}


def trigger_id(policy: str, window_id: str) -> str:
    """Return the id of ``policy`` firing on ``window_id``."""
    return f"{policy}@{window_id}"


def evaluate_policies(config: TriggersConfig, figures: WindowFigures) -> list[Decision]:
    """Return one decision per configured policy, in :data:`POLICIES` order."""
    decisions: list[Decision] = []
    if config.drift is not None:
        decisions.append(_drift(config.drift, figures))
    if config.uncertainty is not None:
        decisions.append(_uncertainty(config.uncertainty, figures))
    if config.uncertain_rows is not None:
        decisions.append(_uncertain_rows(config.uncertain_rows, figures))
    if config.staleness is not None:
        decisions.append(_staleness(config.staleness, figures))
    return decisions


def cooldown_remaining_s(last_round_time_s: float | None, now_s: float, cooldown_s: float) -> float:
    """Return the seconds of cooldown left after the round started at ``last_round_time_s``; 0 when none."""
    if last_round_time_s is None or cooldown_s <= 0:
        return 0.0
    return max(0.0, last_round_time_s + cooldown_s - now_s)


def _drift(policy: DriftTriggerConfig, figures: WindowFigures) -> Decision:
    if figures.drift_score is None or figures.drift_share is None:
        return Decision("drift", False, {}, "no drift check for this window")
    values = {"score": figures.drift_score, "drifted_share": figures.drift_share}
    reasons = []
    below = []
    # Either threshold fires the policy on its own.
    if policy.min_score is not None:
        values["min_score"] = policy.min_score
        if figures.drift_score >= policy.min_score:
            reasons.append(f"drift score {figures.drift_score:.4g} >= {policy.min_score:g}")
        else:
            below.append(f"drift score {figures.drift_score:.4g} < {policy.min_score:g}")
    if policy.min_drifted_share is not None:
        values["min_drifted_share"] = policy.min_drifted_share
        if figures.drift_share >= policy.min_drifted_share:
            reasons.append(f"drifted share {figures.drift_share:.3g} >= {policy.min_drifted_share:g}")
        else:
            below.append(f"drifted share {figures.drift_share:.3g} < {policy.min_drifted_share:g}")
    if reasons:
        return Decision("drift", True, values, "; ".join(reasons))
    return Decision("drift", False, values, "; ".join(below))


def _uncertainty(policy: UncertaintyTriggerConfig, figures: WindowFigures) -> Decision:
    if figures.uncertainty_mean is None or figures.uncertainty_q90 is None:
        return Decision("uncertainty", False, {}, "no uncertainty measured for this window")
    values = {"mean": figures.uncertainty_mean, "q90": figures.uncertainty_q90}
    reasons = []
    below = []
    if policy.mean_above is not None:
        values["mean_above"] = policy.mean_above
        if figures.uncertainty_mean > policy.mean_above:
            reasons.append(f"mean uncertainty {figures.uncertainty_mean:.4g} > {policy.mean_above:g}")
        else:
            below.append(f"mean uncertainty {figures.uncertainty_mean:.4g} <= {policy.mean_above:g}")
    if policy.q90_above is not None:
        values["q90_above"] = policy.q90_above
        if figures.uncertainty_q90 > policy.q90_above:
            reasons.append(f"90th-percentile uncertainty {figures.uncertainty_q90:.4g} > {policy.q90_above:g}")
        else:
            below.append(f"90th-percentile uncertainty {figures.uncertainty_q90:.4g} <= {policy.q90_above:g}")
    if reasons:
        return Decision("uncertainty", True, values, "; ".join(reasons))
    return Decision("uncertainty", False, values, "; ".join(below))


def _uncertain_rows(policy: UncertainRowsTriggerConfig, figures: WindowFigures) -> Decision:
    values = {"uncertain_rows": float(figures.uncertain_rows), "count_at_least": float(policy.count_at_least)}
    if figures.uncertain_rows >= policy.count_at_least:
        return Decision(
            "uncertain_rows",
            True,
            values,
            f"{figures.uncertain_rows} uncertain rows since the live version >= {policy.count_at_least}",
        )
    return Decision(
        "uncertain_rows",
        False,
        values,
        f"{figures.uncertain_rows} uncertain rows since the live version, fewer than {policy.count_at_least}",
    )


def _staleness(policy: StalenessTriggerConfig, figures: WindowFigures) -> Decision:
    if figures.version_time_s is None or not math.isfinite(figures.version_time_s):
        return Decision("staleness", False, {"max_age_s": policy.max_age_s}, "the live version's time is unknown")
    age_s = figures.time_s - figures.version_time_s
    values = {"age_s": age_s, "max_age_s": policy.max_age_s}
    if age_s > policy.max_age_s:
        return Decision("staleness", True, values, f"live version is {age_s:.0f} s old > {policy.max_age_s:g} s")
    return Decision("staleness", False, values, f"live version is {age_s:.0f} s old, within {policy.max_age_s:g} s")
