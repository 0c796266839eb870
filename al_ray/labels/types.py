"""Tasks and answers: the records that pass between the loop, the store and a label source.

A task asks for the label of one pool row, identified by its ``row_id``. An
answer is one annotator's label for that row. Labels are class names as
strings (``"7"`` for an MNIST digit, ``"A"`` for a letter).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

from al_ray.errors import DataError

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
    "Task",
]

PENDING = "pending"
"""Task status: posted, no answer stored yet."""

ANSWERED = "answered"
"""Task status: at least one answer is stored."""

TASK_STATUSES: tuple[str, ...] = (PENDING, ANSWERED)

STARTED = "started"
"""Round status: the round has begun and its tasks may not be posted yet."""

QUERIED = "queried"
"""Round status: every task of the round is posted."""

COMPLETED = "completed"
"""Round status: the model of the round is trained and its metrics are stored."""

ROUND_STATUSES: tuple[str, ...] = (STARTED, QUERIED, COMPLETED)


def _check_row_id(value: object, owner: str) -> int:
    if isinstance(value, bool):
        raise DataError(f"{owner}.row_id must be an integer, got the bool {value!r}.")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise DataError(
            f"{owner}.row_id must be an integer, got {value!r} of type {type(value).__name__}."
        ) from None


@dataclass(frozen=True)
class Task:
    """A request for the label of one pool row, posted in one round."""

    row_id: int
    """Stable identity of the pool row."""

    round_index: int
    """Round in which the row was selected."""

    utility: float | None
    """Utility the query strategy gave the row; ``None`` when it was not recorded or NaN."""

    model_version: str | None
    """Version of the model that scored the row, if known."""

    status: str
    """``"pending"`` or ``"answered"``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "row_id", _check_row_id(self.row_id, "Task"))
        if self.status not in TASK_STATUSES:
            raise DataError(
                f"Task.status must be one of {list(TASK_STATUSES)}, got {self.status!r}."
            )


@dataclass(frozen=True)
class Answer:
    """One annotator's label for one pool row."""

    row_id: int
    """Stable identity of the pool row."""

    label: str
    """Class name, non-empty."""

    annotator: str
    """Name of the annotator (a person's id, or ``"oracle"``), non-empty."""

    answered_at: float
    """When the label was given, in unix seconds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "row_id", _check_row_id(self.row_id, "Answer"))
        if not isinstance(self.label, str) or not self.label:
            raise DataError(
                f"Answer.label for row_id {self.row_id} must be a non-empty string "
                f"(the class name), got {self.label!r}. Convert class names with str()."
            )
        if not isinstance(self.annotator, str) or not self.annotator:
            raise DataError(
                f"Answer.annotator for row_id {self.row_id} must be a non-empty string, "
                f"got {self.annotator!r}."
            )
        try:
            answered_at = float(self.answered_at)
        except (TypeError, ValueError):
            answered_at = math.nan
        if not math.isfinite(answered_at):
            raise DataError(
                f"Answer.answered_at for row_id {self.row_id} must be finite unix seconds, "
                f"got {self.answered_at!r}."
            )
        object.__setattr__(self, "answered_at", answered_at)


@dataclass(frozen=True)
class AddAnswersResult:
    """Counts and conflicts of one :meth:`LabelStore.add_answers` call."""

    stored: int
    """Answers written as new rows."""

    duplicates: int
    """Answers skipped because the same ``(row_id, annotator, label)`` was already stored."""

    conflicts: list[int] = field(default_factory=list)
    """Row ids, ascending, that received a new answer in this call and now hold
    two or more different labels."""
