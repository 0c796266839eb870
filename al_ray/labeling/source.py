"""The human label source: the loop's tasks go to the labeling queue, and resolved labels come back.

The loop calls :meth:`HumanLabelSource.request` with its pending tasks, which
enqueues them, and :meth:`HumanLabelSource.collect`, which polls the queue
until some of them are resolved or the timeout passes. People answer through
the labeling service in the meantime, in this process or another one that
opens the same label store.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence

from al_ray.errors import ConfigError
from al_ray.labeling.queue import LabelQueue
from al_ray.labels import Answer, LabelSource, Task

__all__ = ["DEFAULT_POLL_INTERVAL_S", "HumanLabelSource"]

logger = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 0.5
"""Seconds between two polls of the queue while :meth:`HumanLabelSource.collect` waits."""

# Characters MLflow accepts in a metric name on every platform.
_METRIC_NAME_UNSAFE = re.compile(r"[^\w./ -]")


class HumanLabelSource(LabelSource):
    """A label source whose answers come from people, through a :class:`LabelQueue`.

    Parameters
    ----------
    queue
        The run's labeling queue.
    poll_interval_s
        Seconds between two polls of the queue while waiting, > 0.
    clock
        Monotonic seconds, for the timeout.
    sleep
        Waits the given seconds; tests pass a fake one.
    """

    def __init__(
        self,
        queue: LabelQueue,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not poll_interval_s > 0:
            raise ConfigError(f"poll_interval_s must be > 0 seconds, got {poll_interval_s!r}.")
        self._queue = queue
        self._poll_interval_s = float(poll_interval_s)
        self._clock = clock
        self._sleep = sleep
        # Insertion-ordered set of requested rows whose answer was not returned yet.
        self._pending: dict[int, None] = {}

    @property
    def name(self) -> str:
        """``"human"``."""
        return "human"

    @property
    def queue(self) -> LabelQueue:
        """The labeling queue the source reads from."""
        return self._queue

    @property
    def n_pending(self) -> int:
        """Number of requested rows whose answer was not returned yet."""
        return len(self._pending)

    def request(self, tasks: Sequence[Task]) -> None:
        """Enqueue ``tasks``; tasks already in the queue stay there once."""
        added = self._queue.enqueue(tasks)
        for task in tasks:
            self._pending[task.row_id] = None
        logger.info("Requested %d tasks from annotators (%d new in the queue)", len(tasks), added)

    def collect(self, timeout_s: float) -> list[Answer]:
        """Return the aggregated answers of requested rows, waiting up to ``timeout_s`` for the first.

        Rows resolved before this call (also by an earlier process of the
        run) are returned at once. Each row's answer is returned once per
        source; the annotator of each answer is ``"consensus:<method>"``.
        """
        deadline = self._clock() + max(0.0, float(timeout_s))
        while True:
            self._queue.resolve()
            answers = self._queue.resolved_answers(self._pending) if self._pending else []
            if answers:
                for answer in answers:
                    self._pending.pop(answer.row_id, None)
                return answers
            left_s = deadline - self._clock()
            if left_s <= 0:
                return []
            self._sleep(min(self._poll_interval_s, left_s))

    def waiting_hint(self) -> str:
        """Return how people answer: on the labeling page that ``al-ray label serve`` serves."""
        return (
            "people answer on the labeling page (`al-ray label serve CONFIG`, with --output RUN_DIR "
            "when the run has one; add annotators with `al-ray label annotators add NAME CONFIG`)"
        )

    def metrics(self) -> dict[str, float]:
        """Return agreement, gold accuracy and answer counts, overall and per annotator.

        Figures that are undefined (kappa with too few shared rows, accuracy
        with no gold answers) are left out rather than logged as NaN.
        """
        summary = self._queue.quality()
        figures: dict[str, float] = {
            "labeling_task_answers": float(summary["answers"]["task"]),
            "labeling_gold_answers": float(summary["answers"]["gold"]),
            "labeling_open_tasks": float(summary["items"]["open"]),
        }
        for key in ("fleiss_kappa", "mean_cohen_kappa", "gold_accuracy"):
            if summary[key] is not None:
                figures[f"labeling_{key}"] = float(summary[key])

        answering = [row for row in summary["annotators"] if row["answers"] > 0]
        figures["labeling_annotators"] = float(len(answering))
        if answering:
            figures["labeling_labels_per_annotator"] = sum(row["answers"] for row in answering) / len(answering)
        for row in summary["annotators"]:
            name = _METRIC_NAME_UNSAFE.sub("_", row["annotator_id"])
            figures[f"labeling_answers.{name}"] = float(row["answers"])
            if row["gold_accuracy"] is not None:
                figures[f"labeling_gold_accuracy.{name}"] = float(row["gold_accuracy"])
        return figures
