"""Submit an active-learning run to a Ray cluster as a Ray job, and wait for it.

:func:`submit_round` is the one function behind ``al-ray submit`` and the
Airflow DAG. It validates the config, builds its model here (so a misspelled
estimator fails at once), rejects local-only locations when the cluster is
remote, and, when the cluster runs on this machine, an output folder that the
job would refuse. Then it probes the dashboard (bounded in time), submits
the job through Ray's Job Submission SDK and, with ``wait``, follows it to its end.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from al_ray.cluster.address import (
    Dashboard,
    is_loopback_host,
    probe_dashboard,
    redact,
    resolve_address,
)
from al_ray.cluster.job_spec import JobSpec, build_job_spec
from al_ray.cluster.jobs import JobOutcome, JobsApi
from al_ray.cluster.model_check import check_model
from al_ray.cluster.previous_run import check_submission_output
from al_ray.cluster.uris import config_locations, local_only_problems
from al_ray.errors import ClusterError, ConfigError

__all__ = ["JobOutcome", "PreparedJob", "connect", "prepare_submission", "submission_failure", "submit_round"]

logger = logging.getLogger(__name__)


def connect(address: str, *, timeout_s: float) -> JobsApi:
    """Probe the dashboard at ``address`` and return its Jobs API; fails within about ``2 * timeout_s``."""
    return JobsApi(probe_dashboard(address, timeout_s=timeout_s), timeout_s=timeout_s)


@dataclass(frozen=True)
class PreparedJob:
    """A job ready to submit: the dashboard address, the job, and the request timeout from the config."""

    address: str
    spec: JobSpec
    request_timeout_s: float


def _submission_id(prefix: str, name: str, strategy: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{prefix}-{name}-{strategy}-{stamp}-{secrets.token_hex(3)}".replace(".", "-")


def prepare_submission(
    config_path: str | Path,
    address: str | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
    resume: bool = False,
    more_rounds: int | None = None,
) -> PreparedJob:
    """Load the config and build its job, without contacting the cluster.

    ``resume`` and ``more_rounds`` add ``--resume`` or ``--more-rounds N`` to
    the job's ``al-ray run``; see :func:`submit_round`.

    Raises
    ------
    ConfigError
        When the config is invalid, no address is set, the cluster is remote
        and a location in the config is local-only, or ``more_rounds`` is
        below 1 or combined with ``resume`` or a ``loop.rounds`` override.
    ModelError, StrategyError
        When the model or the strategy cannot be built from the config.
    ResumeError
        When the cluster runs on this machine and the job's ``al-ray run``
        would refuse the output folder: a run is there and neither ``resume``
        nor ``more_rounds`` is given, or ``resume`` is given and none is there.
    """
    from al_ray.config import load_config
    from al_ray.loop.runner import default_output_dir

    run_args = _run_args(resume, more_rounds, overrides or {})
    config_path = Path(config_path)
    config = load_config(config_path)
    if overrides:
        config = config.with_overrides(**dict(overrides))
    address = resolve_address(address, config.cluster.address)
    built = check_model(config)
    if not built.built:
        logger.warning("the model is not built before submitting: %s", built.detail)
    loopback = _is_loopback_address(address)
    output_dir = default_output_dir(config)
    if loopback:
        # The cluster shares this machine's disk, so the store the job would find is visible here.
        check_submission_output(config, config_path, output_dir, resume=resume, more_rounds=more_rounds)
    spec = build_job_spec(
        config,
        config_path,
        output_dir=output_dir,
        loopback=loopback,
        submission_id=_submission_id(config.cluster.submission_id_prefix, config.name, config.strategy.name),
        run_args=run_args,
    )
    if not loopback:
        problems = local_only_problems(
            config_locations(config, output_dir),
            working_dir=spec.working_dir,
            shared_paths=config.cluster.shared_paths,
        )
        if problems:
            listed = "\n  ".join(str(problem) for problem in problems)
            raise ConfigError(
                f"the cluster at {address} is another machine, and it cannot reach these locations "
                f"of {config_path}:\n  {listed}"
            )
    if "://" in (config.labels.store or "") and urllib.parse.urlsplit(config.labels.store).password:
        logger.warning(
            "labels.store contains a password, and the job's config is visible in the Ray dashboard; "
            "leave it out of the URL and set PGPASSWORD on the cluster instead"
        )
    return PreparedJob(address=address, spec=spec, request_timeout_s=config.cluster.request_timeout_s)


def _run_args(resume: bool, more_rounds: int | None, overrides: Mapping[str, object]) -> list[str]:
    """Return the job's extra ``al-ray run`` arguments, rejecting combinations that `al-ray run` rejects."""
    if more_rounds is None:
        return ["--resume"] if resume else []
    if isinstance(more_rounds, bool) or not isinstance(more_rounds, int) or more_rounds < 1:
        raise ConfigError(f"more_rounds must be a whole number of at least 1, got {more_rounds!r}")
    if resume:
        raise ConfigError(
            "give resume or more_rounds, not both: more_rounds continues the run when there is one, and starts it otherwise"
        )
    if "loop.rounds" in overrides:
        raise ConfigError(
            f"give loop.rounds ({overrides['loop.rounds']!r}) or more_rounds ({more_rounds}), not both: "
            "more_rounds counts from the last completed round"
        )
    return ["--more-rounds", str(more_rounds)]


def _is_loopback_address(address: str) -> bool:
    return is_loopback_host(urllib.parse.urlparse(address).hostname)


@contextlib.contextmanager
def _quiet_packaging() -> Iterator[None]:
    """Hide the SDK's per-file packaging messages, and its warning that .git and .venv are excluded (they are)."""
    levels = {
        "ray._private.runtime_env.packaging": logging.WARNING,
        "ray._private.runtime_env.working_dir": logging.ERROR,
        "ray.dashboard.modules.dashboard_sdk": logging.WARNING,
    }
    if logging.getLogger("al_ray").isEnabledFor(logging.INFO):
        yield  # -v shows them
        return
    previous = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)


# Ray 2.60's dashboard returns this text (HTTP 500) when the head node's
# dashboard agent has not registered within 10 s (dashboard/modules/job/job_head.py).
_NO_AGENT = "No available agent to submit job"
_NO_AGENT_FIX = (
    "the head node's dashboard agent is not running. Its log, dashboard_agent.log in session_latest/logs "
    "under the head's --temp-dir (default /tmp/ray), names the cause. When another Ray on that machine "
    "holds the agent's port (default 52365), restart the head with its own --dashboard-agent-listen-port"
)


def submission_failure(address: str, reason: str) -> str:
    """Return the message for a submission that the dashboard at ``address`` rejected with ``reason``."""
    if _NO_AGENT in reason:
        return f"submitting the job to {address} failed: {reason.rstrip('. ')}; {_NO_AGENT_FIX}"
    return f"submitting the job to {address} failed: {reason}"


def _submit(dashboard: Dashboard, spec: JobSpec) -> str:
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(dashboard.address, headers=dashboard.headers)
        with _quiet_packaging():
            submission_id = client.submit_job(
                entrypoint=spec.entrypoint,
                submission_id=spec.submission_id,
                runtime_env=spec.runtime_env,
                metadata=spec.metadata,
                entrypoint_num_cpus=spec.entrypoint_num_cpus or None,
                entrypoint_num_gpus=spec.entrypoint_num_gpus or None,
            )
    except (RuntimeError, ValueError, OSError, ConnectionError) as error:
        # The SDK's messages contain the server's response, and none includes the request headers.
        raise ClusterError(submission_failure(dashboard.address, redact(str(error), dashboard.token))) from None
    logger.info("submitted job %s to %s", submission_id, dashboard.address)
    return submission_id


def submit_round(
    config_path: str | Path,
    address: str | None = None,
    *,
    wait: bool = True,
    timeout_s: float | None = None,
    overrides: Mapping[str, object] | None = None,
    resume: bool = False,
    more_rounds: int | None = None,
    on_log: Callable[[str], None] | None = None,
    on_submitted: Callable[[str], None] | None = None,
) -> JobOutcome:
    """Submit ``al-ray run CONFIG`` to the Ray cluster at ``address`` as a job; with ``wait``, follow it to its end.

    Parameters
    ----------
    config_path : path
        The run's YAML config, on this machine.
    address : str, optional
        The Ray dashboard, e.g. ``http://HOST:8265``; default: ``cluster.address``
        of the config, else the ``RAY_ADDRESS`` environment variable.
    wait : bool
        Follow the job until it ends; otherwise return once Ray accepted it.
    timeout_s : float, optional
        With ``wait``, how long to follow before raising; the job keeps running.
    overrides : mapping, optional
        Dotted config keys to replace, e.g. ``{"loop.rounds": 2}``.
    resume : bool
        Run ``al-ray run --resume``: continue the run in the output folder.
    more_rounds : int, optional
        Run ``al-ray run --more-rounds N``: N rounds past the run's last
        completed one, or a new run of N rounds when there is none. A schedule
        submits the same job every time with 1.
    on_log : callable, optional
        With ``wait``, receives each new piece of the job's log.
    on_submitted : callable, optional
        Receives the submission id as soon as Ray accepted the job.

    Returns
    -------
    JobOutcome
        The status when the job ended (``wait``), or when it was accepted.

    Raises
    ------
    ConfigError, ModelError, StrategyError, ResumeError
        Raised before the cluster is contacted, for the reasons
        :func:`prepare_submission` lists.
    ClusterError
        The dashboard did not respond in time, requested a token that is not
        set or rejected it, refused the job, or (with ``wait``) the job was
        still running after ``timeout_s``.
    """
    prepared = prepare_submission(
        config_path, address, overrides=overrides, resume=resume, more_rounds=more_rounds
    )
    jobs = connect(prepared.address, timeout_s=prepared.request_timeout_s)
    submission_id = _submit(jobs.dashboard, prepared.spec)
    if on_submitted is not None:
        on_submitted(submission_id)
    if not wait:
        return jobs.outcome(submission_id, with_tail=False)
    return jobs.follow(submission_id, on_log=on_log, timeout_s=timeout_s)

