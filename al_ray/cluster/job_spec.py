"""What a submitted job consists of: the entrypoint, the runtime environment, and the config it runs.

How the config reaches the cluster: its text travels in the job's environment
variable ``AL_RAY_CONFIG_YAML``, and the entrypoint writes it to a file before
it starts the loop::

    printf '%s' "$AL_RAY_CONFIG_YAML" > .al-ray-job-ID.yaml && exec python -m al_ray.cli run .al-ray-job-ID.yaml

This works the same with a working_dir and with a container image (which Ray
does not allow together with a working_dir), leaves the user's project folder
untouched, and lets Ray reuse an uploaded working_dir whose files did not
change. The config sent is the effective one: command-line overrides applied,
``ray.address: auto`` so the loop joins the cluster it runs on, and paths
rewritten so that they mean on the cluster what they mean here.
"""

from __future__ import annotations

import logging
import shlex
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import al_ray
from al_ray.errors import ConfigError

__all__ = ["CONFIG_ENV_VAR", "JobSpec", "build_job_spec", "project_root", "resolve_working_dir"]

logger = logging.getLogger(__name__)

CONFIG_ENV_VAR = "AL_RAY_CONFIG_YAML"


def project_root() -> Path | None:
    """Return the source checkout al_ray is imported from, or None for an installed package."""
    candidate = Path(al_ray.__file__).resolve().parent.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "al_ray" / "__init__.py").is_file():
        return candidate
    return None


@dataclass(frozen=True)
class JobSpec:
    """Everything ``JobSubmissionClient.submit_job`` receives for one run."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    entrypoint_num_cpus: float
    entrypoint_num_gpus: float
    config_text: str = field(repr=False)
    working_dir: Path | None = None


def resolve_working_dir(cluster, config_path: Path) -> Path | None:
    """Return the folder uploaded with the job, or None when the job runs in a container image."""
    if cluster.image_uri is not None:
        return None
    if cluster.working_dir is not None:
        folder = Path(cluster.working_dir).expanduser()
        return (folder if folder.is_absolute() else config_path.parent / folder).resolve()
    return project_root()


def _is_local_path(value: str) -> bool:
    return len(urllib.parse.urlparse(value).scheme) <= 1


def _absolute(value: str) -> str:
    return str(Path(value).expanduser().resolve())


def _absolute_sqlite(url: str) -> str:
    """Make the file of a ``sqlite:///relative`` URL absolute; other URLs are returned unchanged."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    database, _, query = url[len(prefix):].partition("?")
    if not database or database == ":memory:" or database.startswith("/"):
        return url
    return prefix + _absolute(database) + (f"?{query}" if query else "")


def _effective_config(config, output_dir: Path, working_dir: Path | None, loopback: bool):
    """Return the config the job runs: paths rewritten for the cluster, and Ray joined there."""
    changes: dict[str, Any] = {}
    if config.ray.address != "auto":
        # Inside a job, RAY_ADDRESS names the GCS of the cluster that runs it, and
        # "auto" reads it. Without an address the loop would start a second Ray
        # inside the job; a Ray Client address set for laptop runs would loop back.
        changes["ray.address"] = "auto"

    data_path = config.data.path
    if data_path is not None and _is_local_path(data_path):
        resolved = Path(data_path).expanduser().resolve()
        if working_dir is not None and working_dir in resolved.parents:
            # The config file is written at the working_dir's root on the cluster.
            changes["data.path"] = resolved.relative_to(working_dir).as_posix()

    if loopback:
        # Same machine: relative locations would land in the job's unpacked
        # working_dir under Ray's temp folder; make them mean what `al-ray run`
        # here would make them mean.
        changes["output"] = _absolute(str(output_dir))
        store = config.labels.store
        if store is not None:
            changes["labels.store"] = _absolute(store) if "://" not in store else _absolute_sqlite(store)
        uri = config.tracking.uri
        if uri is not None:
            if uri.startswith("file:") or not urllib.parse.urlparse(uri).scheme:
                changes["tracking.uri"] = "file://" + _absolute(uri.removeprefix("file://").removeprefix("file:"))
            else:
                changes["tracking.uri"] = _absolute_sqlite(uri)
        feedback = config.serving.feedback.path
        if feedback is not None and "://" not in feedback:
            changes["serving.feedback.path"] = _absolute(feedback)
    return config.with_overrides(**changes) if changes else config


def build_job_spec(
    config,
    config_path: Path,
    *,
    output_dir: Path,
    loopback: bool,
    submission_id: str,
    run_args: list[str],
) -> JobSpec:
    """Build the job for one ``al-ray run`` of ``config`` (already validated, overrides applied).

    Parameters
    ----------
    config : RunConfig
    config_path : Path
        The config file; ``cluster.working_dir`` is relative to its folder.
    output_dir : Path
        The run's output folder as ``al-ray run`` here would choose it.
    loopback : bool
        The cluster runs on this machine, so local paths are made absolute.
    submission_id : str
    run_args : list of str
        Extra ``al-ray run`` arguments, e.g. ``["--resume"]``.
    """
    cluster = config.cluster
    working_dir = resolve_working_dir(cluster, config_path)
    if working_dir is not None and not working_dir.is_dir():
        raise ConfigError(
            f"cluster.working_dir {str(working_dir)!r} is not a folder; "
            "set it to the project folder (relative to the config file), or remove it"
        )
    effective = _effective_config(config, output_dir, working_dir, loopback)
    config_text = yaml.safe_dump(
        effective.model_dump(mode="json", exclude_defaults=True), sort_keys=False, allow_unicode=True
    )

    runtime_env: dict[str, Any] = {"env_vars": {**cluster.env_vars, CONFIG_ENV_VAR: config_text}}
    if working_dir is not None:
        runtime_env["working_dir"] = str(working_dir)
        runtime_env["excludes"] = list(cluster.excludes)
        # The job's config file is written at the root, next to the project's files.
        config_file = f".al-ray-job-{submission_id}.yaml"
    else:
        # Without a working_dir the current folder may be read-only (a container's /).
        config_file = f"${{TMPDIR:-/tmp}}/al-ray-job-{submission_id}.yaml"
    if cluster.pip is not None:
        runtime_env["pip"] = list(cluster.pip)
    if cluster.image_uri is not None:
        runtime_env["image_uri"] = cluster.image_uri

    quoted_args = " ".join(shlex.quote(arg) for arg in run_args)
    entrypoint = (
        f"printf '%s' \"${CONFIG_ENV_VAR}\" > \"{config_file}\" && "
        f"exec python -m al_ray.cli run \"{config_file}\"" + (f" {quoted_args}" if quoted_args else "")
    )
    metadata = {
        "al_ray_config": config.name,
        "al_ray_strategy": config.strategy.name,
        "al_ray_version": al_ray.__version__,
        **cluster.metadata,
    }
    return JobSpec(
        submission_id=submission_id,
        entrypoint=entrypoint,
        runtime_env=runtime_env,
        metadata=metadata,
        entrypoint_num_cpus=cluster.entrypoint_num_cpus,
        entrypoint_num_gpus=cluster.entrypoint_num_gpus,
        config_text=config_text,
        working_dir=working_dir,
    )

