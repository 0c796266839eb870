"""Config section for job submission and cluster runs.

The section describes what travels with a submitted job: the project folder
(``working_dir``) or a container image (``image_uri``), extra pip packages and
environment variables. The rules on combining them are Ray's (Ray 2.60,
``ray/runtime_env/runtime_env.py``): ``image_uri`` can be combined only with
``env_vars``, and ``pip`` needs a ``working_dir`` or the cluster's own Python.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from al_ray.config_base import Section

__all__ = ["ClusterConfig", "DEFAULT_EXCLUDES", "RESERVED_ENV_VARS"]

# Files that the loop does not need on the cluster and that can be large
# (virtual environments, run outputs, MLflow stores). Patterns follow
# .gitignore syntax, as Ray's working_dir packaging reads them.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".venv/",
    ".git/",
    "runs/",
    "mlruns/",
    "__pycache__/",
    "*.db",
    "*.egg-info/",
    ".pytest_cache/",
    ".hypothesis/",
    ".ruff_cache/",
)

# Set by the submission itself. A config value would override the job's config
# text, or leak the cluster token into the job's runtime environment, which the
# dashboard shows to anyone who can open it.
RESERVED_ENV_VARS: frozenset[str] = frozenset(
    {"AL_RAY_CONFIG_YAML", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"}
)

_ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ClusterConfig(Section):
    """Settings for job submission and cluster runs."""

    address: str | None = Field(
        None,
        description="Ray dashboard address for job submission, e.g. http://HOST:8265; --address overrides it",
    )
    working_dir: str | None = Field(
        None,
        description=(
            "folder uploaded as the job's working directory, relative to the config file; "
            "default: the project root when al_ray runs from a source checkout"
        ),
    )
    excludes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDES),
        description="gitignore-style patterns of working_dir files that are not uploaded",
    )
    pip: list[str] | None = Field(
        None, description="pip requirements installed for the job on the cluster, e.g. ['scikit-learn==1.9.1']"
    )
    image_uri: str | None = Field(
        None, description="container image the job runs in; it must contain al_ray (replaces working_dir and pip)"
    )
    env_vars: dict[str, str] = Field(
        default_factory=dict,
        description="environment variables of the job; visible in the Ray dashboard, so never put secrets here",
    )
    entrypoint_num_cpus: float = Field(
        0.0, ge=0, description="CPUs reserved for the loop's driver process on the cluster"
    )
    entrypoint_num_gpus: float = Field(0.0, ge=0, description="GPUs reserved for the loop's driver process")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="labels stored with the job, shown by `ray job list`"
    )
    submission_id_prefix: str = Field(
        "al-ray",
        pattern=r"^[A-Za-z0-9_-]+$",
        max_length=40,
        description="start of each job's submission id: PREFIX-NAME-STRATEGY-TIME-RANDOM",
    )
    shared_paths: list[str] = Field(
        default_factory=list,
        description=(
            "absolute folders mounted at the same path on this machine and on every cluster node "
            "(NFS, a PersistentVolume); local paths under them are accepted for a remote cluster"
        ),
    )
    request_timeout_s: float = Field(
        10.0, gt=0, le=300, description="limit for each request to the Ray dashboard and for reachability checks"
    )

    @field_validator("env_vars")
    @classmethod
    def _env_var_names(cls, env_vars: dict[str, str]) -> dict[str, str]:
        bad = sorted(name for name in env_vars if not _ENV_VAR_NAME.match(name))
        if bad:
            raise ValueError(f"environment variable names must match [A-Za-z_][A-Za-z0-9_]*, got {bad}")
        reserved = sorted(set(env_vars) & RESERVED_ENV_VARS)
        if reserved:
            raise ValueError(
                f"{reserved} are set by `al-ray submit` itself; remove them "
                "(the cluster token comes from RAY_AUTH_TOKEN in the submitting shell and is never shipped)"
            )
        return env_vars

    @field_validator("shared_paths")
    @classmethod
    def _absolute(cls, paths: list[str]) -> list[str]:
        relative = [path for path in paths if not path.startswith("/")]
        if relative:
            raise ValueError(f"shared paths must be absolute folders, e.g. /mnt/shared; got {relative}")
        return paths

    @model_validator(mode="after")
    def _image_alone(self) -> "ClusterConfig":
        # Ray 2.60 raises "The 'image_uri' field currently cannot be used together
        # with other fields of runtime_env" for anything but env_vars and config.
        if self.image_uri is not None and (self.working_dir is not None or self.pip is not None):
            raise ValueError(
                "cluster.image_uri cannot be combined with cluster.working_dir or cluster.pip (a Ray rule); "
                "install al_ray and its packages in the image, or drop image_uri"
            )
        return self
