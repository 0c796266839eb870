"""Prometheus metrics of the loop, the watcher and the labeling service.

:class:`AlRayMetrics` registers the metrics in a ``CollectorRegistry`` of its
own, never prometheus_client's global one, so tests and several runs in one
process stay apart. Three recorders write to it: :class:`LoopMetrics` (rounds,
stage latency, labels, cost, accuracy, outliers, canary outcomes),
:class:`WatchMetrics` (drift, triggers, rounds the watcher started) and
:class:`LabelingMetrics` (answers and queue depth of the labeling service).
A process that is both watcher and loop uses one :func:`process_metrics`
registry for both.

With the default namespace ``al_ray`` the names are the ones the alert rules
and the Grafana dashboard under ``k8s/monitoring/`` query.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = [
    "STAGES",
    "WINDOW_REJECTIONS",
    "AlRayMetrics",
    "LabelingMetrics",
    "LoopMetrics",
    "WatchMetrics",
    "all_metric_names",
    "process_metrics",
    "series_names",
]

STAGES = ("scoring", "labeling_wait", "training", "deployment")
"""Stages of a round whose latency ``round_stage_seconds`` records."""

WINDOW_REJECTIONS = ("empty", "malformed")
"""Reasons the watcher gives for a live window it could not check."""

# From 10 ms (in-process scoring of a small pool) to a day (people answering tasks).
_STAGE_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


class _LoopSeries:
    def __init__(self, options: dict) -> None:
        self.rounds = Counter("rounds", "Rounds completed: a model trained, evaluated and saved", **options)
        self.round_index = Gauge("round_index", "Index of the last completed round", **options)
        self.stage_seconds = Histogram(
            "round_stage_seconds",
            "Seconds each stage of a round took: scoring, labeling_wait, training, deployment",
            ["stage"],
            buckets=_STAGE_BUCKETS_S,
            **options,
        )
        self.round_labels = Gauge("round_labels", "Labeled rows the last completed round added", **options)
        self.labeled_rows = Gauge("labeled_rows", "Labeled rows after the last completed round", **options)
        self.round_accuracy = Gauge("round_accuracy", "Test accuracy of the last completed round's model", **options)
        self.accuracy_gain = Gauge(
            "round_accuracy_gain",
            "Test accuracy of the last completed round's model minus the round before's; negative is a drop",
            **options,
        )
        self.outliers_held_back = Counter(
            "outliers_held_back", "Pool rows the outlier guard held back from queries", **options
        )
        self.outlier_share = Gauge(
            "outlier_share", "Share of the candidate rows the outlier guard held back at the last selection", **options
        )
        self.canary_rollbacks = Counter("canary_rollbacks", "Canary rollouts that ended in a rollback", **options)
        self.canary_promotions = Counter("canary_promotions", "Canary rollouts that ended in a promotion", **options)


class _LabelSeries:
    def __init__(self, options: dict) -> None:
        self.labels = Counter("labels", "Answers stored, by annotator", ["annotator"], **options)
        self.labeling_cost = Counter(
            "labeling_cost",
            "Cost of the answers stored, by annotator, in the unit of labeling.cost_per_label",
            ["annotator"],
            **options,
        )
        self.tasks_pending = Gauge("label_tasks_pending", "Label tasks posted and not answered yet", **options)
        self.tasks_leased = Gauge(
            "label_tasks_leased", "Label tasks an annotator holds on the labeling page now", **options
        )


class _ModelSeries:
    def __init__(self, options: dict) -> None:
        self.version_time = Gauge(
            "model_version_timestamp_seconds", "Unix time the newest model version was made", **options
        )
        self._version_time = math.nan
        self.staleness = Gauge(
            "staleness_seconds",
            "Seconds since the newest model version was made, at scrape time; NaN before the first",
            **options,
        )
        self.staleness.set_function(lambda: time.time() - self._version_time)

    def set_version_time(self, unix_time: float) -> None:
        self._version_time = float(unix_time)
        self.version_time.set(unix_time)


class _WatchSeries:
    def __init__(self, options: dict) -> None:
        self.drift_checks = Counter("drift_checks", "Live windows compared with the reference", **options)
        self.drift_score = Gauge("drift_score", "Overall drift score of the last checked window", **options)
        self.drift_feature_share = Gauge(
            "drift_feature_share", "Share of features that drifted in the last checked window", **options
        )
        self.drift_detected = Gauge("drift_detected", "1 if the last checked window drifted, else 0", **options)
        self.drift_feature_statistic = Gauge(
            "drift_feature_statistic",
            "Test statistic of each feature in the last checked window (Kolmogorov-Smirnov D or PSI)",
            ["feature"],
            **options,
        )
        self.prediction_drift = Gauge(
            "prediction_drift_statistic",
            "Statistic comparing the live class distribution with the reference's",
            **options,
        )
        self.uncertainty_mean = Gauge(
            "live_uncertainty_mean", "Mean uncertainty of the rows of the last checked window", **options
        )
        self.windows_rejected = Counter(
            "drift_windows_rejected",
            "Live windows not checked, by reason (empty, malformed, missing feature)",
            ["reason"],
            **options,
        )
        self.trigger_decisions = Counter(
            "trigger_decisions",
            "Trigger policy evaluations, by policy and decision (start or skip)",
            ["policy", "decision"],
            **options,
        )
        self.rounds_started = Counter(
            "watch_rounds_started", "Rounds the watcher started, by policy", ["policy"], **options
        )
        self.round_failures = Counter(
            "watch_round_failures", "Rounds the watcher started that failed, by policy", ["policy"], **options
        )


_SERIES = {"loop": _LoopSeries, "labels": _LabelSeries, "model": _ModelSeries, "watch": _WatchSeries}


class AlRayMetrics:
    """The al_ray metrics of one process, registered in ``registry`` (a new one by default).

    Each group of series (loop, labels, model, watch) is registered on first
    use, so a process exposes only the series of the parts it runs: the
    labeling service shows no rounds, the loop no drift.

    Parameters
    ----------
    namespace
        Prefix of every metric name; ``al_ray`` gives ``al_ray_rounds_total``.
    registry
        Where the metrics are registered. Two AlRayMetrics must not share one,
        because a metric name can be registered once per registry.
    """

    def __init__(self, namespace: str = "al_ray", registry: CollectorRegistry | None = None) -> None:
        self.namespace = namespace
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._groups: dict[str, object] = {}
        self._lock = threading.Lock()

    def _group(self, name: str):
        with self._lock:
            if name not in self._groups:
                self._groups[name] = _SERIES[name]({"namespace": self.namespace, "registry": self.registry})
            return self._groups[name]

    @property
    def loop(self) -> _LoopSeries:
        return self._group("loop")

    @property
    def labels(self) -> _LabelSeries:
        return self._group("labels")

    @property
    def model(self) -> _ModelSeries:
        return self._group("model")

    @property
    def watch(self) -> _WatchSeries:
        return self._group("watch")

    def render(self) -> bytes:
        """Return every registered series in the Prometheus text format."""
        return generate_latest(self.registry)


def series_names(registry: CollectorRegistry) -> set[str]:
    """Return the name of every series ``registry`` exposes, suffixes (``_total``, ``_bucket``, ...) included."""
    suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created")}
    names: set[str] = set()
    for family in registry.collect():
        # A counter or histogram family's own name is not a series; its suffixed names are.
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def all_metric_names(namespace: str = "al_ray") -> set[str]:
    """Return the name of every series that the loop, the watcher and the labeling service can expose."""
    metrics = AlRayMetrics(namespace)
    for group in _SERIES:
        metrics._group(group)
    return series_names(metrics.registry)


def _cost_of(cost_per_label: float | Mapping[str, float] | None, annotator: str) -> float | None:
    if cost_per_label is None:
        return None
    if isinstance(cost_per_label, Mapping):
        return cost_per_label.get(annotator, cost_per_label.get("*"))
    return float(cost_per_label)


class _LabelRecorder:
    def __init__(self, metrics: AlRayMetrics, cost_per_label: float | Mapping[str, float] | None = None) -> None:
        self.metrics = metrics
        self.cost_per_label = cost_per_label
        self._labels = metrics.labels

    def labels_stored(self, annotators: Iterable[str]) -> None:
        """Count one stored answer per item of ``annotators`` (the annotator of each answer), with its cost.

        The cost is ``cost_per_label`` per answer: one number for every
        annotator, or a mapping from annotator to cost with ``"*"`` for the
        rest. Without a cost, only the answers are counted.
        """
        counts: dict[str, int] = {}
        for annotator in annotators:
            counts[annotator] = counts.get(annotator, 0) + 1
        for annotator, count in counts.items():
            self._labels.labels.labels(annotator).inc(count)
            cost = _cost_of(self.cost_per_label, annotator)
            if cost is not None:
                self._labels.labeling_cost.labels(annotator).inc(cost * count)

    def expect_annotators(self, annotators: Iterable[str]) -> None:
        """Create the zero-valued answer and cost series of annotators known in advance, such as the oracle.

        Without them, ``increase()`` misses the first answers of an annotator,
        because a series appears with its first value.
        """
        for annotator in annotators:
            self._labels.labels.labels(annotator)
            if _cost_of(self.cost_per_label, annotator) is not None:
                self._labels.labeling_cost.labels(annotator)

    def set_pending_tasks(self, count: int) -> None:
        """Set how many label tasks are posted and not answered."""
        self._labels.tasks_pending.set(count)


class LoopMetrics(_LabelRecorder):
    """Recorder of the active-learning loop: one call per stage, per stored batch of answers, per round."""

    def __init__(
        self, metrics: AlRayMetrics, *, cost_per_label: float | Mapping[str, float] | None = None
    ) -> None:
        super().__init__(metrics, cost_per_label)
        self._loop = metrics.loop
        self._model = metrics.model
        self._lock = threading.Lock()

    def stage_seconds(self, stage: str, seconds: float) -> None:
        """Record how long one stage of a round took; ``stage`` is one of :data:`STAGES`."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {list(STAGES)}, got {stage!r}")
        self._loop.stage_seconds.labels(stage).observe(max(0.0, float(seconds)))

    def round_finished(
        self,
        round_index: int,
        *,
        n_labeled: int,
        n_new_labels: int,
        accuracy: float,
        previous_accuracy: float | None = None,
        model_time: float | None = None,
    ) -> None:
        """Record a completed round: its labels, accuracy, gain over the round before, and its new model.

        ``model_time`` is when the round's model was made, in unix seconds (default: now).
        """
        with self._lock:
            self._loop.rounds.inc()
            self._loop.round_index.set(round_index)
            self._loop.round_labels.set(n_new_labels)
            self._loop.labeled_rows.set(n_labeled)
            self._loop.round_accuracy.set(accuracy)
            if previous_accuracy is not None:
                self._loop.accuracy_gain.set(accuracy - previous_accuracy)
            self._model.set_version_time(time.time() if model_time is None else model_time)

    def outliers_held_back(self, n_held_back: int, n_candidates: int) -> None:
        """Record one selection's outlier guard: rows held back out of the rows it judged."""
        self._loop.outliers_held_back.inc(n_held_back)
        self._loop.outlier_share.set(n_held_back / n_candidates if n_candidates > 0 else 0.0)

    def rollout_finished(self, promoted: bool) -> None:
        """Count a canary rollout's outcome."""
        (self._loop.canary_promotions if promoted else self._loop.canary_rollbacks).inc()


class WatchMetrics:
    """Recorder of the watcher: each drift check, each trigger decision, each round it starts."""

    def __init__(self, metrics: AlRayMetrics) -> None:
        self.metrics = metrics
        self._watch = metrics.watch
        self._model = metrics.model

    def drift_checked(
        self,
        *,
        score: float,
        feature_share: float,
        drifted: bool,
        feature_statistics: Mapping[str, float] | None = None,
        prediction_statistic: float | None = None,
        uncertainty_mean: float | None = None,
    ) -> None:
        """Record one checked window's drift figures; the per-feature series are replaced, not merged."""
        self._watch.drift_checks.inc()
        self._watch.drift_score.set(score)
        self._watch.drift_feature_share.set(feature_share)
        self._watch.drift_detected.set(1.0 if drifted else 0.0)
        if feature_statistics is not None:
            self._watch.drift_feature_statistic.clear()
            for feature, statistic in feature_statistics.items():
                self._watch.drift_feature_statistic.labels(str(feature)).set(statistic)
        if prediction_statistic is not None:
            self._watch.prediction_drift.set(prediction_statistic)
        if uncertainty_mean is not None:
            self._watch.uncertainty_mean.set(uncertainty_mean)

    def policies_configured(self, policies: Iterable[str]) -> None:
        """Create the zero-valued series of each policy and window-rejection reason.

        A labeled counter has no series until its first increment, and
        Prometheus' ``increase()`` cannot see a series' first sample rise from
        nothing, so an alert on the first round failure would never fire.
        """
        for policy in policies:
            self._watch.round_failures.labels(policy)
            self._watch.rounds_started.labels(policy)
            for decision in ("start", "skip"):
                self._watch.trigger_decisions.labels(policy, decision)
        for reason in WINDOW_REJECTIONS:
            self._watch.windows_rejected.labels(reason)

    def window_rejected(self, reason: str) -> None:
        """Count a live window that could not be checked; ``reason`` is a short fixed word such as ``empty``."""
        self._watch.windows_rejected.labels(reason).inc()

    def trigger_decision(self, policy: str, start: bool) -> None:
        """Count one evaluation of a trigger policy and whether it decided to start a round."""
        self._watch.trigger_decisions.labels(policy, "start" if start else "skip").inc()

    def round_started(self, policy: str) -> None:
        self._watch.rounds_started.labels(policy).inc()

    def round_failed(self, policy: str) -> None:
        self._watch.round_failures.labels(policy).inc()

    def model_version_seen(self, unix_time: float) -> None:
        """Record when the newest model version in service was made, for the staleness series."""
        self._model.set_version_time(unix_time)


class LabelingMetrics(_LabelRecorder):
    """Recorder of the labeling service: stored answers with their cost, and the task queue."""

    def set_leased_tasks(self, count: int) -> None:
        """Set how many tasks annotators hold now."""
        self._labels.tasks_leased.set(count)


_process_metrics: dict[str, AlRayMetrics] = {}
_process_lock = threading.Lock()


def process_metrics(namespace: str = "al_ray") -> AlRayMetrics:
    """Return this process's metrics for ``namespace``, made on first use.

    The watcher and a loop it runs in the same process share them, and so
    share one exporter. Tests build their own :class:`AlRayMetrics` instead.
    """
    with _process_lock:
        if namespace not in _process_metrics:
            _process_metrics[namespace] = AlRayMetrics(namespace)
        return _process_metrics[namespace]
