"""One scheduled round as a plain function: what the Airflow DAG's task runs.

It submits ``al-ray run CONFIG --more-rounds 1`` through
:func:`al_ray.cluster.submit.submit_round` (Ray's Job Submission API), the
command of the RayCronJob in ``k8s/base/raycronjob.yaml``. The first
submission starts the run, and each later one adds one round past the last
completed one. It follows the job to its end and raises unless it succeeded,
so a scheduler marks the task failed. It imports no scheduler, so tests and
other schedulers call it directly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from al_ray.errors import ClusterError

__all__ = ["run_scheduled_round"]

logger = logging.getLogger(__name__)


def run_scheduled_round(
    config_path: str | Path,
    address: str | None = None,
    *,
    timeout_s: float | None = None,
    more_rounds: int = 1,
) -> dict[str, str]:
    """Submit ``more_rounds`` rounds of ``config_path`` to the Ray cluster at ``address``, wait, and describe the end.

    Parameters
    ----------
    config_path
        The run's YAML config, on the machine that runs the task.
    address
        The Ray dashboard, e.g. ``http://HOST:8265``; default: ``cluster.address``
        of the config, else ``RAY_ADDRESS``.
    timeout_s
        Seconds to follow the job before giving up; the job keeps running.
    more_rounds
        Rounds past the run's last completed one (``al-ray run --more-rounds``);
        with no run yet, the run starts with this many rounds.

    Returns
    -------
    dict
        ``submission_id``, ``address`` and ``status`` (``SUCCEEDED``), small
        enough for a scheduler to store with the task.

    Raises
    ------
    ClusterError
        If the job failed or was stopped (the message ends with its last log
        lines), or any error of :func:`~al_ray.cluster.submit.submit_round`.
    """
    from al_ray.cluster.submit import submit_round

    outcome = submit_round(
        config_path, address, wait=True, timeout_s=timeout_s, more_rounds=more_rounds, on_submitted=_log_submitted
    )
    if not outcome.succeeded:
        tail = "\n".join(outcome.log_tail)
        raise ClusterError(
            f"job {outcome.submission_id} on {outcome.address} ended {outcome.status}: {outcome.summary}"
            + (f"\nlast log lines:\n{tail}" if tail else "")
        )
    logger.info("job %s on %s succeeded", outcome.submission_id, outcome.address)
    return {"submission_id": outcome.submission_id, "address": outcome.address, "status": outcome.status}


def _log_submitted(submission_id: str) -> None:
    logger.info("submitted job %s", submission_id)
