"""Config sections for trigger policies and the watcher (`al-ray watch`).

``TriggersConfig`` contains the policies that start a round, and a policy
left unset is off. ``WatchConfig`` says where live traffic comes from, how rounds start
and how failed rounds are retried. Both are fields of the ``monitoring:``
section; windows are cut as ``monitoring.drift.window`` says.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from al_ray.config_base import Section

__all__ = [
    "DriftTriggerConfig",
    "LiveSourceConfig",
    "RoundStartConfig",
    "StalenessTriggerConfig",
    "TriggersConfig",
    "UncertainRowsTriggerConfig",
    "UncertaintyTriggerConfig",
    "WatchConfig",
]


class DriftTriggerConfig(Section):
    """Start a round when a live window drifts from the live version's training data."""

    min_score: float | None = Field(
        None,
        ge=0,
        description="fire when the window's drift score is at least this. The score is the largest population "
        "stability index (PSI) over the tested features, computed for every feature whichever test "
        "(ks, chi2 or psi) decides that feature's drift; 0.1 is read as moderate, 0.25 as major",
    )
    min_drifted_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="fire when at least this share of the tested features drifted, in (0, 1]. This threshold "
        "alone decides; monitoring.drift.min_drifted_share only sets the drift check's drifted flag in "
        "reports and metrics",
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> DriftTriggerConfig:
        if self.min_score is None and self.min_drifted_share is None:
            raise ValueError("set min_score, min_drifted_share or both; remove the drift policy to turn it off")
        return self


class UncertaintyTriggerConfig(Section):
    """Start a round when the live model is unsure about a window's rows (margin uncertainty, in [0, 1])."""

    mean_above: float | None = Field(
        None, ge=0, le=1, description="fire when the window's mean uncertainty is above this"
    )
    q90_above: float | None = Field(
        None, ge=0, le=1, description="fire when the window's 90th-percentile uncertainty is above this"
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> UncertaintyTriggerConfig:
        if self.mean_above is None and self.q90_above is None:
            raise ValueError("set mean_above, q90_above or both; remove the uncertainty policy to turn it off")
        return self


class UncertainRowsTriggerConfig(Section):
    """Start a round once enough uncertain rows arrived since the live version was trained."""

    count_at_least: int = Field(..., ge=1, description="fire when this many uncertain rows arrived")
    min_uncertainty: float | None = Field(
        None,
        ge=0,
        le=1,
        description="a row counts as uncertain at this margin uncertainty or more; "
        "default: serving.feedback.uncertainty_threshold",
    )


class StalenessTriggerConfig(Section):
    """Start a round when the live version is older than a limit."""

    max_age_s: float = Field(..., gt=0, description="fire when the live version is older than this, in seconds")


class TriggersConfig(Section):
    """The policies that start a round; each is off unless set."""

    drift: DriftTriggerConfig | None = Field(None, description="drift of live windows from the training data")
    uncertainty: UncertaintyTriggerConfig | None = Field(None, description="uncertainty of the live model")
    uncertain_rows: UncertainRowsTriggerConfig | None = Field(
        None, description="count of uncertain rows since the live version"
    )
    staleness: StalenessTriggerConfig | None = Field(None, description="age of the live version")
    cooldown_s: float = Field(
        0.0, ge=0, description="seconds after a round starts during which triggers fire but start no round"
    )

    @property
    def any_policy(self) -> bool:
        """True when at least one policy is set."""
        return any(policy is not None for policy in (self.drift, self.uncertainty, self.uncertain_rows, self.staleness))


class LiveSourceConfig(Section):
    """The source of live traffic."""

    kind: Literal["replay", "feedback"] = Field(
        "feedback",
        description="feedback: the served uncertain rows (serving.feedback.path); "
        "replay: a dataset replayed as live traffic, for evaluation. In a replay, a round's pool is the rows "
        "replayed so far, and its test set is a seeded data.test_size share of those rows, never queried, so "
        "the test set grows as the replay goes on. The state file (state_path) keeps the position of one "
        "source: after changing kind or path, point state_path at a new file",
    )
    path: str | None = Field(
        None,
        description="feedback: the store file, default serving.feedback.path; "
        "replay: unused, the replay reads the run's own data section",
    )
    order: Literal["file", "shuffled"] = Field(
        "file",
        description="replay order: file (rows in file order, a time-ordered stream) or shuffled "
        "(a seeded permutation: a stream without drift)",
    )
    seconds_per_row: float = Field(
        1.0, gt=0, description="replay: seconds of replay time between successive rows, for staleness"
    )
    initial_windows: int = Field(
        1, ge=1, description="replay: windows whose rows train the first model when the run has none yet"
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> LiveSourceConfig:
        if self.kind == "replay" and self.path is not None:
            raise ValueError(
                "source.path is for kind feedback; a replay reads the run's data section "
                "(data.dataset or data.path), so remove source.path"
            )
        return self


class RoundStartConfig(Section):
    """The way the watcher starts a round: in this process or as a Ray job."""

    mode: Literal["local", "submit"] = Field(
        "local", description="local: resume the run here for one more round; submit: a Ray job on a cluster"
    )
    address: str | None = Field(
        None, description="submit: the Ray dashboard address, e.g. http://127.0.0.1:8265"
    )
    timeout_s: float = Field(3600.0, gt=0, description="submit: wait at most this long for the job to end")

    @model_validator(mode="after")
    def _address_for_submit(self) -> RoundStartConfig:
        if self.mode == "submit" and not self.address:
            raise ValueError("mode submit needs address, the Ray dashboard URL such as http://127.0.0.1:8265")
        if self.mode == "local" and self.address is not None:
            raise ValueError("address is for mode submit; remove it, or set mode: submit")
        return self


class WatchConfig(Section):
    """The watcher: the live source, round starts and retries."""

    source: LiveSourceConfig = Field(default_factory=LiveSourceConfig)
    poll_interval_s: float = Field(10.0, gt=0, description="seconds between reads when no full window is ready")
    rounds: RoundStartConfig = Field(default_factory=RoundStartConfig)
    max_consecutive_failures: int = Field(
        5, ge=1, description="attempts at one round before it is abandoned; the watcher keeps running"
    )
    backoff_initial_s: float = Field(5.0, gt=0, description="wait after the first failed attempt, in seconds")
    backoff_max_s: float = Field(300.0, gt=0, description="longest wait between attempts, in seconds")
    reference: Literal["labeled", "recent_traffic"] = Field(
        "labeled",
        description="what live windows are compared with: labeled (the rows the live version was trained on) "
        "or recent_traffic (the live rows read just before the live version was trained)",
    )
    reference_rows: int | None = Field(
        None,
        ge=2,
        description="reference recent_traffic: rows of live traffic in the reference; "
        "default: monitoring.drift.window.size",
    )
    reports: Literal["every_check", "drifted", "none"] = Field(
        "every_check", description="which drift checks write an HTML report (logged to MLflow)"
    )
    state_path: str | None = Field(
        None,
        description="SQLite file of fired triggers and the position in one live source; default: OUTPUT/watch.db",
    )

    @model_validator(mode="after")
    def _consistent(self) -> WatchConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s:g}) is below backoff_initial_s ({self.backoff_initial_s:g}); "
                "raise backoff_max_s"
            )
        return self
