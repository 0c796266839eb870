"""A simulated oracle: labels every requested row from held-out ground truth.

Benchmarks and tests replace the people who label data with this source. It
stores the true labels of the pool, which the loop never reads directly: the
loop gets a label only once the oracle has answered a task for it, exactly as
it would with people.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Callable, Mapping, Sequence

from al_ray.errors import DataError
from al_ray.labels._checks import format_row_ids
from al_ray.labels.source import LabelSource
from al_ray.labels.types import Answer, Task

__all__ = ["SimulatedOracle"]

logger = logging.getLogger(__name__)


class SimulatedOracle(LabelSource):
    """A label source that labels rows from ground truth, at once and always correctly.

    Parameters
    ----------
    ground_truth
        Class name (a non-empty string) of every row the oracle may be asked
        about, keyed by ``row_id``. It is copied.
    annotator
        Name stored with each answer.
    clock
        Returns the current time in unix seconds; stamped on each answer.

    Raises
    ------
    DataError
        If a key is not an integer or a label is not a non-empty string.
    """

    def __init__(
        self,
        ground_truth: Mapping[int, str],
        annotator: str = "oracle",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(annotator, str) or not annotator:
            raise DataError(f"annotator must be a non-empty string, got {annotator!r}.")
        self._truth = _copy_ground_truth(ground_truth)
        self._annotator = annotator
        self._clock = clock
        # Insertion-ordered set of requested row ids not yet collected.
        self._pending: dict[int, None] = {}

    @property
    def name(self) -> str:
        """``"simulated_oracle"``."""
        return "simulated_oracle"

    @property
    def annotator(self) -> str:
        """Name stored with each answer."""
        return self._annotator

    @property
    def n_pending(self) -> int:
        """Number of requested rows not yet collected."""
        return len(self._pending)

    def request(self, tasks: Sequence[Task]) -> None:
        """Record the rows of ``tasks`` as pending; rows already pending stay pending once.

        Raises
        ------
        DataError
            If a row has no ground-truth label. No row of the call is recorded then.
        """
        row_ids = [task.row_id for task in tasks]
        unknown = [row_id for row_id in row_ids if row_id not in self._truth]
        if unknown:
            raise DataError(
                f"The simulated oracle has no ground-truth label for {format_row_ids(unknown)}. "
                "Build the oracle from the labels of every pool row it may be asked about."
            )
        for row_id in row_ids:
            self._pending[row_id] = None

    def collect(self, timeout_s: float) -> list[Answer]:
        """Return one answer per pending row, in request order, and clear them.

        ``timeout_s`` is validated but never waited on, because the oracle
        labels every row at the moment it is collected.
        """
        valid_timeout = (
            isinstance(timeout_s, (int, float))
            and not isinstance(timeout_s, bool)
            and not math.isnan(timeout_s)
            and timeout_s >= 0
        )
        if not valid_timeout:
            raise DataError(f"timeout_s must be a number of seconds >= 0, got {timeout_s!r}.")
        answered_at = float(self._clock())
        answers = [
            Answer(
                row_id=row_id,
                label=self._truth[row_id],
                annotator=self._annotator,
                answered_at=answered_at,
            )
            for row_id in self._pending
        ]
        self._pending.clear()
        logger.debug("Simulated oracle returned %d answers", len(answers))
        return answers


def _copy_ground_truth(ground_truth: Mapping[int, str]) -> dict[int, str]:
    if not isinstance(ground_truth, Mapping):
        raise DataError(
            f"ground_truth must be a mapping of row_id to class name, got "
            f"{type(ground_truth).__name__}. Build it with dict(zip(row_ids, labels))."
        )
    truth: dict[int, str] = {}
    for key, label in ground_truth.items():
        if isinstance(key, bool):
            raise DataError(f"ground_truth keys must be integer row ids, got the bool {key!r}.")
        try:
            row_id = operator.index(key)
        except TypeError:
            raise DataError(
                f"ground_truth keys must be integer row ids, got {key!r} of type "
                f"{type(key).__name__}."
            ) from None
        if not isinstance(label, str) or not label:
            raise DataError(
                f"ground_truth label of row_id {row_id} must be a non-empty string (the class "
                f"name), got {label!r}. Convert class names with str()."
            )
        truth[row_id] = label
    return truth
