"""Labels: the durable label store, the label-source interface and the simulated oracle.

The loop posts the rows it selects as tasks in a :class:`LabelStore`, hands
them to a :class:`LabelSource`, and stores the answers the source returns. The
store keeps every answer (a conflicting one is flagged, never overwritten) and
the round counter, so a killed run resumes without losing a label or querying
a row twice.
"""

from __future__ import annotations

from al_ray.labels.oracle import SimulatedOracle
from al_ray.labels.source import LabelSource
from al_ray.labels.store import LabelStore
from al_ray.labels.types import (
    ANSWERED,
    COMPLETED,
    PENDING,
    QUERIED,
    ROUND_STATUSES,
    STARTED,
    TASK_STATUSES,
    AddAnswersResult,
    Answer,
    Task,
)

__all__ = [
    "ANSWERED",
    "COMPLETED",
    "PENDING",
    "QUERIED",
    "ROUND_STATUSES",
    "STARTED",
    "TASK_STATUSES",
    "AddAnswersResult",
    "Answer",
    "LabelSource",
    "LabelStore",
    "SimulatedOracle",
    "Task",
]
