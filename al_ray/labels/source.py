"""The label-source interface: how the loop requests labels and collects them.

The loop never calls a function that returns labels at once. It posts tasks to
the store, hands them to a label source with :meth:`LabelSource.request`, and
later stores whatever :meth:`LabelSource.collect` returns. A simulated oracle
answers at once; a labeling service for people may answer hours later or not
at all, and the loop code is the same for both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from al_ray.labels.types import Answer, Task

__all__ = ["LabelSource"]


class LabelSource(ABC):
    """Anything that turns tasks into answers: a simulated oracle or people."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name of the source for logs and run parameters, such as ``"simulated_oracle"``."""

    @abstractmethod
    def request(self, tasks: Sequence[Task]) -> None:
        """Ask for the labels of ``tasks``.

        After a resume the loop requests the still-pending tasks again, so a
        source must treat a task it already has pending as a no-op rather than
        requesting its label twice.
        """

    @abstractmethod
    def collect(self, timeout_s: float) -> list[Answer]:
        """Return the answers that arrived, waiting at most ``timeout_s`` seconds.

        May return fewer answers than were requested, or none. Answers
        returned once are not returned again.
        """

    def waiting_hint(self) -> str:
        """Return what the user can do while the loop waits for this source's answers, or "".

        The loop logs it once per round when the answers are not in at once.
        A source that answers at once, such as the simulated oracle, returns
        "", the default.
        """
        return ""

    def metrics(self) -> dict[str, float]:
        """Return figures about the source's annotators (agreement, accuracy), logged once per round.

        Names are MLflow metric names. A source with nothing to report
        returns an empty dict, which is the default.
        """
        return {}
