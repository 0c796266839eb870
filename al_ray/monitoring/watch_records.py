"""Records of what the watcher saw and decided: the log, the audit log, MLflow and Prometheus.

Every checked window gets one INFO line with its figures, and every policy
decision an audit entry (once per window and policy, so a window read again
after a restart adds none) and a Prometheus count. MLflow keeps one run per
watched run, named ``<name>-watch``, with each window's figures at step
``window index`` and its drift report under ``drift_reports/``.

A tracking store that fails mid-watch is logged and counted; the watcher
keeps running, because losing a metric must not stop rounds from starting.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from al_ray.monitoring.triggers import Decision, trigger_id

__all__ = ["WatchRecorder"]

logger = logging.getLogger(__name__)

AUDIT_CHECK_ENTRIES = 1000
"""Newest audit entries whose chain the watcher checks at start."""


class WatchRecorder:
    """Record windows, decisions and round attempts in every sink the config enables.

    Parameters
    ----------
    config : RunConfig
    output_dir : Path
        The run's output folder: default home of the audit log and the MLflow store.
    state : WatchState
        Keeps the MLflow run id, so a restarted watcher continues its run.
    version_time : float, optional
        Unix time the live version was made, when the run has one. The
        staleness series start from it, so the first scrape of a restarted
        watcher does not read 0 (and fire a staleness alert).
    policies : sequence of str
        The configured trigger policies; each gets zero-valued counters at
        start, so ``increase()`` in an alert rule detects the first failure.
    """

    def __init__(
        self, config, output_dir: Path, state, *, version_time: float | None = None, policies: Sequence[str] = ()
    ) -> None:
        from al_ray.monitoring.audit_records import open_audit_log

        self.config = config
        self.output_dir = output_dir
        self.reports_dir = output_dir / "watch" / "reports"
        self.audit = open_audit_log(config, output_dir)
        self.metrics, self._exporter = None, None
        try:
            self.metrics, self._exporter = self._open_metrics(version_time, policies)
            self.tracker = self._open_tracker(state)
        except BaseException:
            if self._exporter is not None:
                self._exporter.release()
            if self.audit is not None:
                self.audit.close()
            raise
        self.tracking_failures = 0

    def _open_metrics(self, version_time: float | None, policies: Sequence[str]):
        settings = self.config.monitoring.metrics
        if not settings.enabled:
            return None, None
        from al_ray.monitoring.exporter import acquire_exporter
        from al_ray.monitoring.metrics import WatchMetrics, process_metrics

        registry = process_metrics(settings.namespace)
        metrics = WatchMetrics(registry)
        # Set before the endpoint serves its first scrape.
        metrics.policies_configured(policies)
        if version_time is not None:
            metrics.model_version_seen(version_time)
        return metrics, acquire_exporter(registry, settings.host, settings.port)

    @property
    def metrics_url(self) -> str | None:
        """The URL of the metrics endpoint, or None when metrics are off."""
        return self._exporter.exporter.url if self._exporter is not None else None

    def check_audit_chain(self, recent_entries: int = AUDIT_CHECK_ENTRIES) -> None:
        """Warn when the newest entries of the audit log already break its hash chain.

        Only the last ``recent_entries`` are checked, so the start stays fast
        on a long log; ``al-ray audit verify`` checks the whole chain.
        """
        if self.audit is None:
            return
        problems = self.audit.verify_recent(recent_entries)
        if problems:
            logger.warning(
                "the audit log %s is already broken: %d problems in its last %d entries, the first at %s. "
                "The watcher keeps appending; run `al-ray audit verify --path %s` to check the whole chain",
                self.audit.location, len(problems), recent_entries, problems[0], self.audit.location,
            )

    def _open_tracker(self, state):
        tracking = self.config.tracking
        if not tracking.enabled:
            return None
        from al_ray.tracking import MlflowTracker

        uri = tracking.uri or f"sqlite:///{(self.output_dir / 'mlflow.db').resolve()}"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        tracker = MlflowTracker(
            uri,
            tracking.experiment or f"al_ray-{self.config.name}",
            artifact_location=(self.output_dir / "mlartifacts").resolve().as_uri(),
        )
        params = {
            f"monitoring.{key}": value
            for key, value in _flatten(self.config.monitoring.model_dump(mode="json")).items()
        }
        run_id = tracker.start(f"{self.config.name}-watch", params, state.get("mlflow_run_id"))
        state.set({"mlflow_run_id": run_id})
        return tracker

    def close(self) -> None:
        if self.tracker is not None:
            self._tracking(self.tracker.finish, "FINISHED")
        if self.audit is not None:
            self.audit.close()
        if self._exporter is not None:
            self._exporter.release()

    # Windows.

    def window_checked(self, index: int, window_id: str, figures: dict[str, float], result, decisions: Sequence[Decision], action: str) -> None:
        """Record a checked window: its figures, drift result and the policies' decisions."""
        fired = [decision.policy for decision in decisions if decision.fired]
        logger.info(
            "window %s: %s fired=%s action=%s",
            window_id,
            " ".join(f"{key}={value:.4g}" for key, value in figures.items()),
            ",".join(fired) or "none",
            action,
        )
        for decision in decisions:
            if decision.fired:
                logger.info("window %s: policy %s fired: %s", window_id, decision.policy, decision.reason)
        if self.metrics is not None:
            self.metrics.drift_checked(
                score=result.score,
                feature_share=result.drift_share,
                drifted=result.drifted,
                feature_statistics={feature.name: feature.statistic for feature in result.features},
                prediction_statistic=None if result.prediction_drift is None else result.prediction_drift.statistic,
                uncertainty_mean=figures.get("uncertainty_mean"),
            )
            requested = action == "round requested"
            for decision in decisions:
                self.metrics.trigger_decision(decision.policy, decision.fired and requested)
                if decision.fired and requested:
                    self.metrics.round_started(decision.policy)
        if self.audit is not None:
            from al_ray.monitoring.audit_records import trigger_record

            records = [
                trigger_record(
                    decision.policy,
                    start=decision.fired and action == "round requested",
                    reason=decision.reason if not decision.fired else f"{decision.reason}; {action}",
                    figures=decision.figures,
                    subject=window_id,
                    key=f"decision:{trigger_id(decision.policy, window_id)}",
                )
                for decision in decisions
            ]
            self.audit.append_many(records)
        if self.tracker is not None:
            metrics = {key: value for key, value in figures.items() if math.isfinite(value)}
            metrics.update({f"fired_{decision.policy}": float(decision.fired) for decision in decisions})
            metrics["round_requested"] = float(action == "round requested")
            self._tracking(self.tracker.log_round, index, metrics)

    def window_rejected(self, index: int, window_id: str, reason: str, message: str) -> None:
        """Record a window that was empty or malformed and skipped."""
        logger.warning("window %s skipped (%s): %s", window_id, reason, message)
        if self.metrics is not None:
            self.metrics.window_rejected(reason)
        if self.tracker is not None:
            self._tracking(self.tracker.log_round, index, {f"window_{reason}": 1.0})

    def write_report(self, result, window_id: str, decisions: Sequence[Decision] = ()) -> Path | None:
        """Write the window's HTML drift report, with the policies' decisions, and log it to MLflow; return its path."""
        from al_ray.monitoring.drift_report import write_report

        path = self.reports_dir / f"{_safe_name(window_id)}.html"
        write_report(result, path, decisions=decisions)
        if self.tracker is not None:
            self._tracking(self.tracker.client.log_artifact, self.tracker.run_id, str(path), "drift_reports")
        return path

    # Rounds.

    def round_attempted(self, request, policies: Sequence[str], *, error: str | None, status: str) -> None:
        """Record one attempt at a round: succeeded, ended without a round, failed or abandoned."""
        subject = f"round {request.target_round} (request {request.request_id}, window {request.window_id})"
        if self.metrics is not None and error is not None:
            for policy in policies:
                self.metrics.round_failed(policy)
        if self.audit is not None:
            from al_ray.monitoring.audit import TRIGGER

            self.audit.append(
                TRIGGER,
                actor="watcher",
                subject=subject,
                data={"status": status, "attempt": request.attempts + 1, "error": error, "policies": list(policies)},
                key=f"attempt:{request.request_id}:{request.attempts + 1}",
            )

    def round_version(self, unix_time: float) -> None:
        """Record the wall-clock time of the live version, for the staleness series."""
        if self.metrics is not None:
            self.metrics.model_version_seen(unix_time)

    def _tracking(self, call, *args: Any) -> None:
        try:
            call(*args)
        except Exception as error:  # noqa: BLE001 - MLflow raises many types for a store that went away
            self.tracking_failures += 1
            logger.warning(
                "MLflow logging failed (%d failures so far), continuing without it for this window: %s",
                self.tracking_failures, error,
            )


def _safe_name(window_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", window_id)


def _flatten(raw: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
