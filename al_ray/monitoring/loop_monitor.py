"""The loop's metrics and audit entries behind one object, so the loop's code calls one hook per event.

With ``monitoring.metrics`` and ``monitoring.audit`` both disabled, the
metrics go to a registry that nothing serves and no audit entry is written,
so every hook is cheap and the loop calls them unconditionally.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from al_ray.monitoring.audit import AuditLog, default_actor
from al_ray.monitoring.audit_records import (
    label_records,
    model_version_record,
    open_audit_log,
)
from al_ray.monitoring.exporter import ExporterLease, acquire_exporter, write_textfile
from al_ray.monitoring.metrics import AlRayMetrics, LoopMetrics, process_metrics
from al_ray.monitoring.rollout_audit import RolloutAudit

__all__ = ["LoopMonitor"]

logger = logging.getLogger(__name__)


class LoopMonitor:
    """Metrics and audit entries of one run.

    Parameters
    ----------
    metrics
        The registry to record into.
    audit
        The audit log, or None when auditing is off.
    actor
        Who the run's own entries (model versions, rollouts) name.
    cost_per_label
        Cost of one answer, for the labeling cost series; None when unknown.
    textfile
        A ``.prom`` file rewritten after every round, or None.
    exporter
        The lease of the HTTP endpoint serving ``metrics``, released by :meth:`close`.
    """

    def __init__(
        self,
        metrics: AlRayMetrics,
        audit: AuditLog | None = None,
        *,
        actor: str | None = None,
        cost_per_label: float | Mapping[str, float] | None = None,
        textfile: str | Path | None = None,
        exporter: ExporterLease | None = None,
    ) -> None:
        self.metrics = LoopMetrics(metrics, cost_per_label=cost_per_label)
        self.audit = audit
        self.actor = actor or default_actor()
        self._registry = metrics
        self._textfile = Path(textfile) if textfile is not None else None
        self._exporter = exporter

    @classmethod
    def open(cls, config, output_dir: str | Path) -> LoopMonitor:
        """Open what ``config.monitoring`` enables: the metrics endpoint, the textfile, the audit log."""
        settings = config.monitoring.metrics
        # With people labeling, the labeling service costs each person's answer;
        # the loop stores only the aggregated label, which would undercount.
        cost = None if config.labels.source == "human" else config.labeling.cost_per_label
        if not settings.enabled and settings.textfile is None:
            return cls(AlRayMetrics(settings.namespace), open_audit_log(config, output_dir),
                       actor=config.monitoring.audit.actor, cost_per_label=cost)
        metrics = process_metrics(settings.namespace)
        exporter = acquire_exporter(metrics, settings.host, settings.port) if settings.enabled else None
        try:
            audit = open_audit_log(config, output_dir)
        except BaseException:
            if exporter is not None:
                exporter.release()
            raise
        monitor = cls(metrics, audit, actor=config.monitoring.audit.actor, cost_per_label=cost,
                      textfile=settings.textfile, exporter=exporter)
        if config.labels.source == "oracle":
            # The simulated oracle's annotator id (al_ray.labels.SimulatedOracle's default).
            monitor.metrics.expect_annotators(["oracle"])
        return monitor

    @property
    def exporter_url(self) -> str | None:
        """The metrics endpoint's URL, or None when metrics are not served."""
        return self._exporter.exporter.url if self._exporter is not None else None

    def close(self) -> None:
        """Write the textfile a last time, stop serving metrics and close the audit log."""
        self._write_textfile()
        if self._exporter is not None:
            self._exporter.release()
            self._exporter = None
        if self.audit is not None:
            self.audit.close()

    # Hooks of the loop.

    @contextmanager
    def stage(self, stage: str) -> Iterator[None]:
        """Time the block as one stage of a round (see :data:`al_ray.monitoring.metrics.STAGES`)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.stage_seconds(stage, time.perf_counter() - started)

    def answers_stored(self, answers: Iterable, result, *, tasks: Iterable = (), source: str = "loop") -> None:
        """Count and audit a batch that ``LabelStore.add_answers`` accepted.

        ``result`` is its :class:`~al_ray.labels.AddAnswersResult`. The audit
        log skips answers it already has, so a batch with duplicates writes
        only the new ones.
        """
        answers = list(answers)
        annotators = {answer.annotator for answer in answers}
        if result.duplicates == 0:
            self.metrics.labels_stored(answer.annotator for answer in answers)
        elif len(annotators) == 1:
            self.metrics.labels_stored([annotators.pop()] * result.stored)
        else:
            # The store does not report which answers were the duplicates, so the
            # stored ones cannot be attributed to annotators.
            self.metrics.labels_stored(["unknown"] * result.stored)
        if self.audit is not None:
            self.audit.append_many(label_records(answers, tasks=tasks, source=source))

    def pending_tasks(self, count: int) -> None:
        self.metrics.set_pending_tasks(count)

    def model_registered(
        self, name: str, version: str, *, round_index: int, lineage: Mapping[str, Any],
        metrics: Mapping[str, float], run_id: str | None,
    ) -> None:
        """Audit a version registered in the model registry."""
        if self.audit is not None:
            self.audit.append_many([
                model_version_record(
                    name, version, actor=self.actor, round_index=round_index, lineage=lineage,
                    metrics=metrics, run_id=run_id,
                )
            ])

    def round_completed(self, round_index: int, round_records: list[dict]) -> None:
        """Record a completed round from the label store's ``round_records()``."""
        completed = {row["round_index"]: row["metrics"] or {} for row in round_records if row["status"] == "completed"}
        current = completed.get(round_index)
        if current is None:
            return
        earlier = [index for index in completed if index < round_index]
        previous = completed[max(earlier)] if earlier else None
        n_labeled = int(current.get("n_labeled", 0))
        if current.get("scoring_rows", 0) > 0:
            self.metrics.stage_seconds("scoring", current.get("scoring_seconds", 0.0))
        self.metrics.stage_seconds("training", current.get("train_seconds", 0.0))
        self.metrics.round_finished(
            round_index,
            n_labeled=n_labeled,
            n_new_labels=n_labeled - int(previous.get("n_labeled", 0)) if previous else n_labeled,
            accuracy=float(current.get("accuracy", float("nan"))),
            previous_accuracy=float(previous["accuracy"]) if previous and "accuracy" in previous else None,
        )
        self._write_textfile()

    # Hooks of the rollout.

    def deployed(self, action: str, name: str, version: str, *, reason: str, data: Mapping[str, Any] | None = None) -> None:
        """Audit a version served, retired or made the champion."""
        RolloutAudit(self.audit, name, actor=self.actor).served(action, version, reason, data)

    def canary_recorder(self, name: str, version: str):
        """Return an ``on_decision`` callback for ``run_rollout`` that audits traffic changes and counts outcomes."""

        def count(decision) -> None:
            if decision.action in ("promote", "rollback"):
                self.metrics.rollout_finished(promoted=decision.action == "promote")

        return RolloutAudit(self.audit, name, actor=self.actor).decision_recorder(version, then=count)

    def _write_textfile(self) -> None:
        if self._textfile is not None:
            write_textfile(self._registry, self._textfile)
