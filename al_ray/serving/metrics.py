"""Prometheus metrics of the router, in a registry of its own.

A private ``CollectorRegistry`` keeps these series apart from anything else
in the replica's process that registers metrics in the global default
registry. Counters and histograms are cumulative over the router's life; the
per-window figures the canary controller judges live in ``/stats``.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "RouterMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_UNCERTAINTY_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class RouterMetrics:
    """Per-version request, error, latency and uncertainty series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "al_ray_serving_requests",
            "Calls the router made to a version, answering or shadowing a request",
            ["version"],
            registry=self.registry,
        )
        self._errors = Counter(
            "al_ray_serving_errors", "Calls to a version that failed", ["version"], registry=self.registry
        )
        self._rows = Counter("al_ray_serving_rows", "Rows sent to a version", ["version"], registry=self.registry)
        self._latency = Histogram(
            "al_ray_serving_latency_seconds",
            "Time from the router's call to a version until its answer",
            ["version"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self._uncertainty = Histogram(
            "al_ray_serving_uncertainty",
            "Margin uncertainty 1 - (p1 - p2) of each answered row",
            ["version"],
            buckets=_UNCERTAINTY_BUCKETS,
            registry=self.registry,
        )
        self._weight = Gauge(
            "al_ray_serving_weight", "Share of traffic a live version answers", ["version", "role"], registry=self.registry
        )
        self._skipped = Counter(
            "al_ray_serving_background_skipped",
            "Shadow or agreement calls skipped because too many were pending",
            registry=self.registry,
        )

    def record_call(self, version: str, n_rows: int) -> None:
        """Count one call of ``n_rows`` rows to ``version``."""
        self._requests.labels(version).inc()
        self._rows.labels(version).inc(n_rows)

    def record_error(self, version: str) -> None:
        """Count one failed call to ``version``."""
        self._errors.labels(version).inc()

    def record_latency(self, version: str, latency_s: float) -> None:
        """Record the latency of one successful call, in seconds."""
        self._latency.labels(version).observe(latency_s)

    def record_uncertainty(self, version: str, uncertainty: np.ndarray) -> None:
        """Record the uncertainty of every row that ``version`` served."""
        histogram = self._uncertainty.labels(version)
        for value in uncertainty:
            histogram.observe(float(value))

    def record_skipped(self) -> None:
        """Count one shadow or agreement call that was not made."""
        self._skipped.inc()

    def set_weights(self, live: dict[str, tuple[str, float]]) -> None:
        """Replace the weight series: ``live`` maps each role to (version, weight)."""
        self._weight.clear()
        for role, (version, weight) in live.items():
            self._weight.labels(version, role).set(weight)

    def render(self) -> bytes:
        """Return every series in the Prometheus text format."""
        return generate_latest(self.registry)
