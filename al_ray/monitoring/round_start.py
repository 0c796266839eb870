"""Round starters for the watcher: resume the run here, or submit it as a Ray job.

Both starters take the round index to reach, not "one more round". A retry
after a failure, or after the watcher restarted, therefore resumes towards the
same round: a round that already completed is not run again, and a round
killed half-way continues from its stored tasks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from al_ray.config import RunConfig
from al_ray.data import Split
from al_ray.errors import AlRayError
from al_ray.labels import LabelStore
from al_ray.monitoring.errors import MonitoringError

__all__ = [
    "LocalRoundStarter",
    "RoundOutcome",
    "RoundStartError",
    "RoundStarter",
    "SubmitRoundStarter",
    "label_store_location",
    "last_completed_round",
]

logger = logging.getLogger(__name__)


class RoundStartError(MonitoringError):
    """A round the watcher started did not complete: a submitted job failed or was stopped."""


@dataclass(frozen=True)
class RoundOutcome:
    """The result of one attempt at a round."""

    completed: bool
    """True when the target round is completed in the label store."""
    last_round: int | None
    """The last completed round after the attempt."""
    status: str
    """The loop's status (``completed``, ``pool exhausted``, ...) or the job's end state."""


class RoundStarter(Protocol):
    """Run the loop until ``target_round`` is completed; raise when the attempt fails."""

    def start(self, target_round: int) -> RoundOutcome:
        ...


def label_store_location(config: RunConfig, output_dir: Path) -> str | Path:
    """Return the run's label store: ``labels.store``, or OUTPUT/labels.db."""
    return config.labels.store or (output_dir / "labels.db")


def last_completed_round(config: RunConfig, output_dir: Path) -> int | None:
    """Return the run's last completed round, or None when it has none (or no store yet)."""
    location = label_store_location(config, output_dir)
    if isinstance(location, Path) and not location.exists():
        return None
    with LabelStore(location) as store:
        return store.last_completed_round()


class LocalRoundStarter:
    """Resume the run in this process for rounds up to the target.

    Parameters
    ----------
    config
        The run's config; ``loop.rounds`` is replaced by the target.
    output_dir
        The run's output folder.
    split_provider
        Returns the split a round uses in place of the config's seeded one;
        a replay passes the rows seen so far as the pool. None keeps the
        config's split.
    ray_stack
        Keeps a Ray session that a round starts open for the next rounds.
    """

    def __init__(
        self,
        config: RunConfig,
        output_dir: Path,
        *,
        split_provider: Callable[[], Split] | None = None,
        ray_stack: contextlib.ExitStack | None = None,
    ) -> None:
        self.config = config
        self.output_dir = output_dir
        self.split_provider = split_provider
        self.ray_stack = ray_stack

    def start(self, target_round: int) -> RoundOutcome:
        from al_ray.loop import ActiveLearningLoop

        config = self.config.with_overrides(**{"loop.rounds": target_round})
        before = last_completed_round(config, self.output_dir)
        options = {}
        if self.split_provider is not None:
            options["split"] = self.split_provider()
        loop = ActiveLearningLoop(config, output_dir=self.output_dir, ray_stack=self.ray_stack, **options)
        result = loop.run(resume=before is not None)
        last = result.rounds[-1].round_index if result.rounds else None
        return RoundOutcome(completed=last is not None and last >= target_round, last_round=last, status=result.status)


class SubmitRoundStarter:
    """Submit ``al-ray run CONFIG --resume`` with ``loop.rounds`` set to the target as a Ray job, and wait for it.

    Parameters
    ----------
    config
        The run's config, as loaded from ``config_path``.
    config_path
        The run's YAML config, on this machine.
    output_dir
        The run's output folder; the job writes there (shared storage or a
        label store URL when the cluster is remote).
    address
        The Ray dashboard address.
    timeout_s
        Maximum wait for the job to end, in seconds.

    NOTE: the watcher's tests run rounds locally only; this path relies on
    ``al_ray.cluster.submit.submit_round`` and was not run against a cluster here.
    """

    def __init__(self, config: RunConfig, config_path: Path, output_dir: Path, *, address: str, timeout_s: float) -> None:
        self.config = config
        self.config_path = config_path
        self.output_dir = output_dir
        self.address = address
        self.timeout_s = timeout_s

    def start(self, target_round: int) -> RoundOutcome:
        from al_ray.cluster.submit import submit_round

        job = submit_round(
            self.config_path,
            self.address,
            wait=True,
            timeout_s=self.timeout_s,
            overrides={"loop.rounds": target_round, "output": str(self.output_dir)},
            resume=True,
        )
        if not job.succeeded:
            tail = "; ".join(job.log_tail[-3:])
            raise RoundStartError(
                f"job {job.submission_id} for round {target_round} ended {job.status}: {job.summary}"
                + (f" (last log lines: {tail})" if tail else "")
            )
        try:
            last = last_completed_round(self.config, self.output_dir)
        except AlRayError as error:
            # A store the cluster reaches but this machine does not: trust the job's status.
            logger.info(
                "cannot read the label store after job %s (%s); taking SUCCEEDED as the round done",
                job.submission_id, error,
            )
            return RoundOutcome(completed=True, last_round=target_round, status=job.status)
        if last is None:
            logger.info("no label store here after job %s; taking SUCCEEDED as the round done", job.submission_id)
            return RoundOutcome(completed=True, last_round=target_round, status=job.status)
        return RoundOutcome(completed=last >= target_round, last_round=last, status=job.status)
