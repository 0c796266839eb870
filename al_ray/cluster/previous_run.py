"""Whether a run's label store already exists, and what a submitted job then needs.

``al-ray run`` rejects a new run where a label store file exists, and a
resume where none does (``ActiveLearningLoop._check_output``). The job that
``al-ray submit`` starts runs ``al-ray run``, so it would fail the same way
minutes later, with a fix that names ``al-ray run``'s ``--output`` flag, which
``submit`` does not have. With the functions here ``check`` warns and
``submit`` rejects the job before it starts, each naming the flags and config
keys that fit it.

A store given as a database URL is not looked at, as the loop does not look
at it either.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from al_ray.cluster.job_spec import CONFIG_ENV_VAR
from al_ray.errors import ResumeError

__all__ = ["check_submission_output", "in_submitted_job", "store_file", "submitted_job_fix"]

logger = logging.getLogger(__name__)

_NEW_RUN_ELSEWHERE = "or set output (or labels.store) in the config to start a new run elsewhere"
_JOB_FIXES = {
    "used": f"submit again with --more-rounds N or --resume to continue it, {_NEW_RUN_ELSEWHERE}",
    "missing": "submit without --resume to start the run, or with --more-rounds N, which starts it when there is none",
    "changed": f"submit with the run's original settings to continue it, {_NEW_RUN_ELSEWHERE}",
}


def store_file(config, output_dir: Path) -> Path | None:
    """Return the label store file the run uses, or None when ``labels.store`` is a URL."""
    store = config.labels.store
    if store is None:
        return Path(output_dir) / "labels.db"
    if "://" in store:
        return None
    return Path(store).expanduser()


def _new_run_fix(config, config_path: Path | str) -> str:
    key = "labels.store" if config.labels.store is not None else "output"
    return f"set {key} in {config_path} to another location to start a new run there"


def check_submission_output(
    config, config_path: Path | str, output_dir: Path, *, resume: bool, more_rounds: int | None
) -> None:
    """Reject a job whose ``al-ray run`` would reject its label store; the store must be visible here.

    Raises
    ------
    ResumeError
        A new run (neither ``resume`` nor ``more_rounds``) where a store
        exists, or ``resume`` where none does.
    """
    path = store_file(config, output_dir)
    if path is None or more_rounds is not None:
        return
    exists = path.exists()
    if not resume and exists:
        raise ResumeError(
            f"{path.resolve()} already contains a run, and the job would reject a new run there; "
            "submit again with --more-rounds N (N rounds past its last completed one) or --resume "
            f"(up to its loop.rounds), or {_new_run_fix(config, config_path)}"
        )
    if resume and not exists:
        raise ResumeError(
            f"nothing to resume: no label store at {path.resolve()}; {_JOB_FIXES['missing']}"
        )


def in_submitted_job() -> bool:
    """Return whether this process is the loop of a job that ``al-ray submit`` started."""
    return CONFIG_ENV_VAR in os.environ


def submitted_job_fix(problem: Literal["used", "missing", "changed"]) -> str | None:
    """Inside a submitted job, return the fix for an output folder problem of ``al-ray run``; outside one, None.

    ``problem`` is ``"used"`` for a new run where a run exists, ``"missing"``
    for a resume where none exists, and ``"changed"`` for a resume with a
    config that differs from the run's. Outside a job, ``al-ray run``'s own
    fixes (``--resume``, ``--output``) apply.
    """
    if not in_submitted_job():
        return None
    return _JOB_FIXES[problem]
