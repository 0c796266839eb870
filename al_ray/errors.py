"""Exceptions raised by al_ray.

Every error a user can cause derives from :class:`AlRayError`, so the CLI can
print its message and exit with status 2 without a traceback::

    AlRayError
    ├── ConfigError          invalid or unknown configuration key or value
    ├── DataError            missing file, unknown label column, non-finite features
    ├── StrategyError        unknown strategy, invalid strategy input
    ├── ModelError           unknown estimator, model that cannot predict probabilities
    ├── LabelStoreError      label store that cannot be opened or written
    ├── ScoringError         pool scoring failed (non-finite utilities, worker failure)
    ├── TrackingError        MLflow store that cannot be reached or written
    ├── ResumeError          run state that does not match the config it resumes
    ├── ClusterError         Ray cluster unreachable, token rejected, job unknown or failed to submit
    └── AuditError           audit log that cannot be opened, read or written

Messages name the offending value, what is allowed, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "AlRayError",
    "AuditError",
    "ClusterError",
    "ConfigError",
    "DataError",
    "LabelStoreError",
    "ModelError",
    "ResumeError",
    "ScoringError",
    "StrategyError",
    "TrackingError",
]


class AlRayError(Exception):
    """Base class of every error that al_ray raises on bad input or state."""


class ConfigError(AlRayError, ValueError):
    """A configuration key or value is invalid."""


class DataError(AlRayError, ValueError):
    """A data source is missing, malformed or contains values that cannot be used."""


class StrategyError(AlRayError, ValueError):
    """A query strategy is unknown or received input it cannot use."""


class ModelError(AlRayError):
    """A model cannot be built, trained or asked for probabilities."""


class LabelStoreError(AlRayError):
    """The label store cannot be opened, read or written."""


class ScoringError(AlRayError):
    """Scoring the unlabeled pool failed."""


class TrackingError(AlRayError):
    """The experiment tracker cannot be reached or written."""


class ResumeError(AlRayError):
    """A run cannot be resumed from the state found in its output folder."""


class ClusterError(AlRayError):
    """A Ray cluster cannot be reached, rejects the request, or does not know the job."""


class AuditError(AlRayError):
    """The audit log cannot be opened, read or written, or a filter on it is invalid."""
