"""Serve application builders for config-file deploys: ``serve deploy`` and KubeRay's RayService.

A Serve config names each application by ``import_path`` and passes it
``args``. Serve validates the args against the pydantic model that annotates
the builder's one parameter, so an unknown or missing key fails the deploy
with a message that names it. Deployment options such as
``ray_actor_options`` belong in the config's ``deployments`` list.

The builders import Ray Serve, FastAPI and MLflow only when called, so the
argument models import quickly for :mod:`al_ray.serving.export`.
"""

# No "from __future__ import annotations" here: Serve reads each builder's
# parameter annotation at deploy time and must get the class, not a string.
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ROUTER_BUILDER", "VERSION_BUILDER", "RouterArgs", "VersionArgs", "build_router", "build_version"]

logger = logging.getLogger(__name__)

VERSION_BUILDER = "al_ray.serving.builders:build_version"
ROUTER_BUILDER = "al_ray.serving.builders:build_router"


class VersionArgs(BaseModel):
    """Arguments of one model version's application: a version of a registered MLflow model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str = Field(..., min_length=1, description="MLflow tracking and registry URI the replicas can reach")
    name: str = Field(..., min_length=1, description="registered model name")
    version: str = Field(
        ..., min_length=1, description="version number, or an alias (champion, challenger) resolved when the app is built"
    )


class RouterArgs(BaseModel):
    """Arguments of the router's application; the fields of :class:`~al_ray.serving.settings.RouterSettings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    champion_app: str = Field(..., min_length=1, description="Serve application of the champion version")
    challenger_app: str | None = Field(None, min_length=1, description="Serve application of the challenger, or null")
    challenger_weight: float = Field(0.0, ge=0.0, le=1.0, description="share of traffic the challenger gets")
    sticky: bool = False
    shadow: bool = False
    max_rows: int = Field(1024, ge=1)
    max_body_bytes: int = Field(4_000_000, ge=1)
    feedback_path: str | None = None
    uncertainty_threshold: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = Field(0, ge=0)


def build_version(args: VersionArgs) -> Any:
    """Build the application of one registered model version.

    An alias is resolved here, once, on the cluster, so the replica loads a
    fixed version number and reports it as its label even if the alias
    moves later.

    Raises
    ------
    TrackingError
        If the registry cannot be reached or has no such version; Serve then
        marks the application DEPLOY_FAILED with this message.
    """
    from al_ray.serving.app import ModelVersion
    from al_ray.serving.spec import VersionSpec
    from al_ray.tracking.registry import ModelRegistry

    args = VersionArgs.model_validate(args)
    number = str(ModelRegistry(args.tracking_uri, existing=True).describe(args.name, args.version).version)
    logger.info("building version %s of %r (requested %s)", number, args.name, args.version)
    spec = VersionSpec(label=number, tracking_uri=args.tracking_uri, name=args.name, version=number)
    return ModelVersion.bind(spec)


def build_router(args: RouterArgs) -> Any:
    """Build the router's application in front of the champion (and challenger) applications."""
    from al_ray.serving.app import Router
    from al_ray.serving.settings import RouterSettings

    args = RouterArgs.model_validate(args)
    return Router.bind(RouterSettings(**args.model_dump()))
