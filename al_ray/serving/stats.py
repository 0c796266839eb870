"""Per-version counters of one stats window.

A window starts when the router starts and again at every change of weights
or roles, so a canary step is judged only on traffic it routed itself.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["LATENCY_SAMPLES", "StatsWindow", "VersionStats"]

LATENCY_SAMPLES = 10_000
"""Latencies kept per version and window; percentiles cover the most recent ones."""


@dataclass
class VersionStats:
    """Counters of one version in one window.

    ``requests`` counts every call the router made to the version to serve
    or shadow a request, ``errors`` the calls that failed and ``rows`` the
    rows sent. ``compared`` and ``agreed`` count rows that both versions
    scored and the rows among them where they predicted the same class.
    ``labeled`` and ``correct`` count feedback rows for this version's predictions.
    """

    version: str
    requests: int = 0
    errors: int = 0
    rows: int = 0
    compared: int = 0
    agreed: int = 0
    labeled: int = 0
    correct: int = 0
    latency_count: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def add_latency(self, latency_ms: float) -> None:
        """Record the latency of one successful call, in milliseconds."""
        self.latencies_ms.append(latency_ms)
        self.latency_count += 1

    def to_json(self) -> dict[str, Any]:
        """Return the counters in the ``/stats`` shape."""
        p50 = p95 = None
        if self.latencies_ms:
            samples = np.fromiter(self.latencies_ms, dtype=np.float64)
            p50, p95 = (float(value) for value in np.percentile(samples, [50, 95]))
        return {
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "rows": self.rows,
            "latency_ms": {"p50": p50, "p95": p95, "count": self.latency_count},
            "agreement": {"compared": self.compared, "agreed": self.agreed},
            "feedback": {"labeled": self.labeled, "correct": self.correct},
        }


@dataclass
class StatsWindow:
    """Counters of every version since the window's start.

    Attributes
    ----------
    index
        Window number: 1 for the router's first window, one more at each change.
    started
        Start time, Unix seconds.
    weights
        The traffic split of the window, by role.
    """

    index: int
    weights: dict[str, float]
    started: float = field(default_factory=time.time)
    versions: dict[str, VersionStats] = field(default_factory=dict)

    def of(self, version: str) -> VersionStats:
        """Return the counters of ``version``, created at zero on first use."""
        stats = self.versions.get(version)
        if stats is None:
            stats = self.versions[version] = VersionStats(version)
        return stats

    def to_json(self, roles: dict[str, str | None]) -> dict[str, Any]:
        """Return the ``/stats`` body; ``roles`` maps each role to its live version or None."""
        versions: dict[str, Any] = {}
        for role, version in roles.items():
            versions[role] = None if version is None else self.of(version).to_json()
        return {
            "window": self.index,
            "window_started": self.started,
            "weights": dict(self.weights),
            "versions": versions,
        }
