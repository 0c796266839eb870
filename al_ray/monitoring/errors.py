"""Exceptions of the monitoring package.

Both derive from :class:`~al_ray.errors.AlRayError`, so the CLI prints their
message and exits with status 2::

    MonitoringError                 monitoring input or state that cannot be used
    ├── DriftError                  a window or reference that a drift test cannot use
    └── OutlierError                an outlier guard that cannot be fit or applied
"""

from __future__ import annotations

from al_ray.errors import AlRayError

__all__ = ["DriftError", "MonitoringError", "OutlierError"]


class MonitoringError(AlRayError):
    """Monitoring received input, or found state, that it cannot use."""


class DriftError(MonitoringError, ValueError):
    """A live window or a reference cannot be tested for drift.

    Examples are an empty window, a window with NaN values, a window whose
    width differs from the reference, or one with fewer rows than the config's
    ``min_window_rows``.
    """


class OutlierError(MonitoringError, ValueError):
    """The outlier guard cannot be fit on, or applied to, the given rows."""
