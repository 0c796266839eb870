"""The canary's Ray Serve config: the ``applications:`` document that ``serve deploy`` and RayService take.

It contains three applications, the same ones that :func:`al_ray.serving.deploy.deploy`
starts from Python: one per model version (champion, and challenger unless
left out), each without an HTTP route, and the router, which owns the HTTP
route and attaches the challenger at ``serving.weights["challenger"]`` once
both versions are reachable.

Versions are named as the registry names them: a version number, or the alias
``champion`` or ``challenger``, resolved when Serve builds the application on
the cluster. So a config written once with aliases stays valid across rounds,
and one written with numbers pins the versions.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from al_ray.config import RunConfig
from al_ray.errors import ConfigError
from al_ray.seeding import derive_seed
from al_ray.serving.builders import (
    ROUTER_BUILDER,
    VERSION_BUILDER,
    RouterArgs,
    VersionArgs,
)
from al_ray.serving.deploy import DEFAULT_APP_NAME, version_app_name
from al_ray.serving.errors import ServingError

__all__ = ["build_serve_config", "dump_serve_config", "validate_serve_config", "write_serve_config"]

logger = logging.getLogger(__name__)

# Deployment names inside the applications; the config's `deployments` entries must match them.
_MODEL_DEPLOYMENT = "ModelVersion"
_ROUTER_DEPLOYMENT = "Router"
_LOGGING = {"enable_access_log": False}


def build_serve_config(
    config: RunConfig,
    *,
    tracking_uri: str,
    model_name: str,
    champion: str = "champion",
    challenger: str | None = "challenger",
    app_name: str = DEFAULT_APP_NAME,
) -> dict[str, Any]:
    """Return the Serve config that serves ``champion`` and ``challenger`` of ``model_name``.

    Parameters
    ----------
    config
        The run's config. Its ``serving`` section sets the HTTP host, port,
        route prefix, replica CPUs and the router's settings. Its root seed
        seeds the traffic split.
    tracking_uri
        MLflow registry URI that every Serve replica can reach.
    model_name
        The registered model name.
    champion, challenger
        Version numbers or aliases; ``challenger`` None serves the champion alone.
    app_name
        Serve application name of the router; the versions' names derive from it.

    Raises
    ------
    ConfigError
        If champion and challenger name the same version.
    ServingError
        If the result does not validate against Ray Serve's schema.
    """
    if challenger is not None and challenger == champion:
        raise ConfigError(
            f"champion and challenger are both {champion!r}; name another challenger or pass 'none' to serve one version"
        )
    serving = config.serving
    champion_app = version_app_name(app_name, champion)
    challenger_app = None if challenger is None else version_app_name(app_name, challenger)

    applications = [_version_application(champion_app, tracking_uri, model_name, champion, serving.replica_num_cpus)]
    if challenger is not None:
        applications.append(
            _version_application(challenger_app, tracking_uri, model_name, challenger, serving.replica_num_cpus)
        )
    router_args = RouterArgs(
        champion_app=champion_app,
        challenger_app=challenger_app,
        challenger_weight=serving.weights["challenger"] if challenger is not None else 0.0,
        sticky=serving.sticky,
        shadow=serving.shadow and challenger is not None,
        max_rows=serving.max_rows,
        max_body_bytes=serving.max_body_bytes,
        feedback_path=serving.feedback.path,
        uncertainty_threshold=serving.feedback.uncertainty_threshold,
        seed=derive_seed(config.seed, "serving"),
    )
    applications.append(
        {
            "name": app_name,
            "route_prefix": serving.route_prefix,
            "import_path": ROUTER_BUILDER,
            "args": router_args.model_dump(),
            "deployments": [{"name": _ROUTER_DEPLOYMENT, "ray_actor_options": {"num_cpus": serving.replica_num_cpus}}],
            "logging_config": dict(_LOGGING),
        }
    )
    document = {"http_options": {"host": serving.host, "port": serving.port}, "applications": applications}
    validate_serve_config(document)
    return document


def _version_application(name: str, tracking_uri: str, model_name: str, version: str, num_cpus: float) -> dict[str, Any]:
    args = VersionArgs(tracking_uri=tracking_uri, name=model_name, version=version)
    return {
        "name": name,
        # No HTTP route: only the router reaches a version, through its deployment handle.
        "route_prefix": None,
        "import_path": VERSION_BUILDER,
        "args": args.model_dump(),
        "deployments": [{"name": _MODEL_DEPLOYMENT, "ray_actor_options": {"num_cpus": num_cpus}}],
        "logging_config": dict(_LOGGING),
    }


def validate_serve_config(document: dict[str, Any]) -> None:
    """Check ``document`` against Ray Serve's ``ServeDeploySchema`` and the builders' argument models.

    Serve's schema ignores unknown keys, for forward compatibility, so a
    misspelt key would be dropped without a word; here it is an error.

    Raises
    ------
    ServingError
        Naming each invalid or unknown key.
    """
    from ray.serve.schema import ServeDeploySchema

    try:
        schema = ServeDeploySchema.model_validate(document)
    except ValidationError as error:
        raise ServingError(f"the Serve config does not validate against ServeDeploySchema: {error}") from None
    unknown = _unknown_keys(schema, document, "")
    if unknown:
        raise ServingError(f"unknown keys in the Serve config, which Ray Serve would ignore: {', '.join(unknown)}")

    builders = {VERSION_BUILDER: VersionArgs, ROUTER_BUILDER: RouterArgs}
    for application in schema.applications:
        # Serve checks the route prefix only when it deploys (Ray 2.60, validate_route_prefix).
        prefix = application.route_prefix
        if prefix is not None and (not prefix.startswith("/") or (prefix != "/" and prefix.endswith("/"))):
            raise ServingError(
                f"application {application.name!r} has route_prefix {prefix!r}; "
                "it must start with '/' and not end with one, such as '/' or '/models'"
            )
        model = builders.get(application.import_path)
        if model is None:
            raise ServingError(
                f"application {application.name!r} has import_path {application.import_path!r}; "
                f"use one of {', '.join(sorted(builders))}"
            )
        try:
            model.model_validate(application.args)
        except ValidationError as error:
            raise ServingError(f"application {application.name!r} has invalid args: {error}") from None


def _unknown_keys(model: BaseModel, data: Any, path: str) -> list[str]:
    """Return the dotted paths of keys in ``data`` that no field of ``model`` (or its nested models) takes."""
    if not isinstance(data, dict):
        return []
    fields = type(model).model_fields
    by_key = {name: name for name in fields}
    by_key.update({field.alias: name for name, field in fields.items() if field.alias})
    unknown: list[str] = []
    for key, value in data.items():
        where = f"{path}{key}"
        name = by_key.get(key)
        if name is None:
            unknown.append(where)
            continue
        parsed = getattr(model, name)
        if isinstance(parsed, BaseModel):
            unknown.extend(_unknown_keys(parsed, value, f"{where}."))
        elif isinstance(parsed, list) and isinstance(value, list):
            for index, (item, raw) in enumerate(zip(parsed, value)):
                if isinstance(item, BaseModel):
                    unknown.extend(_unknown_keys(item, raw, f"{where}[{index}]."))
    return unknown


def dump_serve_config(document: dict[str, Any], *, header: str | None = None) -> str:
    """Return ``document`` as YAML text, in the key order it was built in, after an optional comment header."""
    stream = io.StringIO()
    if header:
        for line in header.splitlines():
            stream.write(f"# {line}".rstrip() + "\n")
    yaml.safe_dump(document, stream, sort_keys=False, default_flow_style=False)
    return stream.getvalue()


def write_serve_config(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a failed write leaves the old file whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    logger.info("wrote the Serve config to %s", path)
