"""Deploying the router and model versions on Ray Serve, and replacing the challenger.

Each version runs in a Serve application of its own, named
``<app_name>-version-<label>``; the router runs in ``<app_name>``. A new
challenger is deployed beside the running ones, and only after its replica
has started is it attached to the router, at the weight asked for. A
challenger that fails to start is deleted and never receives traffic, so the
champion keeps serving every request.

Ray must be initialised by the caller (:func:`al_ray.runtime.ray_session`).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from al_ray.config import ServingConfig
from al_ray.serving.client import RouterClient
from al_ray.serving.errors import ServingError
from al_ray.serving.spec import VersionSpec

__all__ = [
    "DEFAULT_APP_NAME",
    "deploy",
    "remove_challenger",
    "replace_challenger",
    "router_url",
    "shutdown",
    "version_app_name",
]

logger = logging.getLogger(__name__)

DEFAULT_APP_NAME = "al_ray"
DEFAULT_START_TIMEOUT_S = 180.0
# Constructor failures before Serve marks a version DEPLOY_FAILED. Serve's
# default for one replica is 3; a model file that cannot be loaded fails the
# same way every time, and each try costs about a second.
_CONSTRUCTOR_ATTEMPTS = 2
_LOGGING = {"enable_access_log": False}
_POLL_S = 0.2
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def version_app_name(app_name: str, label: str) -> str:
    """Return the Serve application name of version ``label``."""
    return f"{app_name}-version-{label}"


def router_url(config: ServingConfig) -> str:
    """Return the URL that reaches the router from this machine."""
    # A proxy bound to all interfaces is reached through the loopback address.
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.port}{config.route_prefix.rstrip('/')}"


def deploy(
    config: ServingConfig,
    champion: VersionSpec,
    challenger: VersionSpec | None = None,
    *,
    app_name: str = DEFAULT_APP_NAME,
    seed: int = 0,
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
) -> RouterClient:
    """Start Serve, deploy the champion and the router, then the challenger if one is given.

    Applications of an earlier deployment under ``app_name`` are deleted
    first. The challenger is attached at ``config.weights["challenger"]``
    once it has started.

    Parameters
    ----------
    config
        The serving section of the run's config.
    champion, challenger
        The versions to serve.
    app_name
        Serve application name of the router; versions get names derived from it.
    seed
        Seed of the router's random traffic split, derived from the run's root seed.
    start_timeout_s
        Seconds to wait for each application to start.

    Returns
    -------
    RouterClient
        A client of the deployed router.

    Raises
    ------
    ServingError
        If Ray is not initialised, or the champion or router fails to start.
        If only the challenger fails, the champion and router stay deployed
        and serve every request, and the error message states this.
    """
    from ray import serve

    from al_ray.serving.app import Router
    from al_ray.serving.settings import RouterSettings

    _require_ray()
    if challenger is not None and challenger.label == champion.label:
        raise ServingError(f"champion and challenger are both version {champion.label}; give the challenger another label")
    started = time.perf_counter()
    serve.start(http_options={"host": config.host, "port": config.port}, logging_config=_LOGGING)
    shutdown(app_name, stop_serve=False)

    champion_app = _deploy_version(config, champion, app_name, start_timeout_s)
    settings = RouterSettings.from_config(config, champion_app, seed=seed)
    router = Router.options(ray_actor_options={"num_cpus": config.replica_num_cpus}).bind(settings)
    try:
        _run_app(router, app_name, config.route_prefix, start_timeout_s)
        _call_router(app_name, "ready", timeout_s=start_timeout_s)
    except ServingError:
        _delete_apps([app_name, champion_app])
        raise
    client = RouterClient(router_url(config))
    try:
        client.wait_ready(timeout_s=start_timeout_s)
    except ServingError as error:
        raise ServingError(
            f"{error}. If Serve was already running in this Ray cluster with other HTTP options, "
            "they were kept: shut Serve down first or use its host and port in serving.host and serving.port"
        ) from error
    logger.info(
        "serving version %s as champion at %s (started in %.1f s)",
        champion.label,
        client.base_url,
        time.perf_counter() - started,
    )
    if challenger is not None:
        try:
            replace_challenger(
                config,
                challenger,
                app_name=app_name,
                weight=config.weights["challenger"],
                start_timeout_s=start_timeout_s,
            )
        except ServingError as error:
            raise ServingError(
                f"{error}. The champion, version {champion.label}, serves every request at {client.base_url}"
            ) from error
    return client


def replace_challenger(
    config: ServingConfig,
    challenger: VersionSpec,
    *,
    app_name: str = DEFAULT_APP_NAME,
    weight: float = 0.0,
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
) -> RouterClient:
    """Deploy ``challenger`` beside the running versions and route ``weight`` of traffic to it.

    The router's replica keeps running: the new version is attached in place
    and a new stats window starts. The previous challenger, if any, is
    deleted after the new one is attached.

    Raises
    ------
    ServingError
        If the version's label is live already, it fails to start, or it
        serves other classes or features than the champion. Routing is then
        as it was before the call.
    """
    from ray import serve

    _require_ray()
    routing = _call_router(app_name, "ready", timeout_s=start_timeout_s)
    live_labels = {routing[role]["version"] for role in ("champion", "challenger") if routing[role] is not None}
    if challenger.label in live_labels:
        raise ServingError(
            f"version {challenger.label} is live already; remove_challenger first or give the new version another label"
        )
    new_app = _deploy_version(config, challenger, app_name, start_timeout_s)
    try:
        result = _call_router(app_name, "attach_challenger", new_app, weight, timeout_s=start_timeout_s)
    except ServingError:
        serve.delete(new_app)
        raise
    if not result["attached"]:
        serve.delete(new_app)
        raise ServingError(f"version {challenger.label} was not attached: {result['error']}")
    if result["previous_app"] is not None:
        serve.delete(result["previous_app"])
    logger.info("version %s is the challenger at weight %g", challenger.label, weight)
    return RouterClient(router_url(config))


def remove_challenger(*, app_name: str = DEFAULT_APP_NAME, timeout_s: float = 60.0) -> str | None:
    """Detach the challenger from the router, delete its application and return its name.

    Returns None when there is no challenger. After a promotion the
    challenger is the former champion, so this retires it.
    """
    from ray import serve

    _require_ray()
    previous = _call_router(app_name, "detach_challenger", timeout_s=timeout_s)
    if previous is not None:
        serve.delete(previous)
        logger.info("deleted the former challenger's application %s", previous)
    return previous


def shutdown(app_name: str = DEFAULT_APP_NAME, *, stop_serve: bool = True) -> None:
    """Delete the router application ``app_name`` and its version applications.

    With ``stop_serve``, Serve itself is shut down when no other application
    is left. Does nothing when Ray or Serve is not running.
    """
    import ray
    from ray import serve

    if not ray.is_initialized():
        return
    # serve.status() is empty, not an error, when Serve was never started.
    names = list(serve.status().applications)
    prefix = version_app_name(app_name, "")
    ours = [name for name in names if name == app_name or name.startswith(prefix)]
    if stop_serve and set(names) <= set(ours):
        # Shutting Serve down deletes every application at once.
        serve.shutdown()
        return
    _delete_apps(ours)


def _deploy_version(config: ServingConfig, spec: VersionSpec, app_name: str, start_timeout_s: float) -> str:
    """Deploy one version in its own application, wait until it runs, and return the application name."""
    from al_ray.serving.app import ModelVersion

    # The model file is checked by the replica that loads it, not here: on a
    # cluster the driver may not see the same files.
    name = version_app_name(app_name, spec.label)
    deployment = ModelVersion.options(
        ray_actor_options={"num_cpus": config.replica_num_cpus},
        max_constructor_retry_count=_CONSTRUCTOR_ATTEMPTS,
    )
    try:
        _run_app(deployment.bind(spec), name, None, start_timeout_s)
    except ServingError as error:
        _delete_apps([name])
        raise ServingError(f"version {spec.label} ({spec.source}) failed to start: {error}") from error
    return name


def _run_app(application: Any, name: str, route_prefix: str | None, timeout_s: float) -> None:
    """Deploy ``application`` as Serve application ``name`` and wait until it is RUNNING."""
    from ray import serve

    serve.run_many(
        [serve.RunTarget(target=application, name=name, route_prefix=route_prefix, logging_config=_LOGGING)],
        wait_for_applications_running=False,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        status = serve.status().applications.get(name)
        if status is not None and status.status == "RUNNING":
            return
        if status is not None and status.status == "DEPLOY_FAILED":
            details = "; ".join(
                f"{deployment}: {_cause(info.message)}" for deployment, info in status.deployments.items() if info.message
            )
            raise ServingError(f"Serve application {name} failed to deploy: {details or status.message}")
        if time.monotonic() >= deadline:
            state = "missing" if status is None else status.status
            raise ServingError(
                f"Serve application {name} is still {state} after {timeout_s:g} s; "
                "check that the cluster has the CPUs that serving.replica_num_cpus asks for"
            )
        time.sleep(_POLL_S)


def _cause(message: str) -> str:
    """Return the last line of a Serve status message, which names the constructor's exception."""
    lines = [line.strip() for line in _ANSI_ESCAPE.sub("", message).splitlines() if line.strip()]
    return lines[-1] if lines else message


def _call_router(app_name: str, method: str, *args: Any, timeout_s: float) -> Any:
    """Call a method of the router replica through its handle and return the result."""
    from ray import serve

    try:
        handle = serve.get_app_handle(app_name)
    except Exception as error:  # Serve raises its own exception types when the application is missing
        raise ServingError(
            f"no router application {app_name!r} is deployed ({type(error).__name__}: {error}); call deploy first"
        ) from error
    try:
        return getattr(handle, method).remote(*args).result(timeout_s=timeout_s)
    except Exception as error:  # the replica's exception arrives wrapped in a Ray error type
        raise ServingError(f"the router {app_name!r} failed in {method}: {type(error).__name__}: {error}") from error


def _delete_apps(names: list[str]) -> None:
    from ray import serve

    for name in names:
        serve.delete(name)


def _require_ray() -> None:
    import ray

    if not ray.is_initialized():
        raise ServingError("Ray is not initialised; call ray.init() or enter al_ray.runtime.ray_session first")
