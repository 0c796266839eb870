"""Serving model versions on Ray Serve: a weighted router with champion and challenger.

The names here import without Ray Serve. Deploying lives in
:mod:`al_ray.serving.deploy` (``deploy``, ``replace_challenger``,
``remove_challenger``, ``shutdown``) and the Serve deployments in
:mod:`al_ray.serving.app`; both import Serve and FastAPI, which take seconds.
"""

from al_ray.serving.client import RouterClient
from al_ray.serving.errors import RouterHTTPError, ServingError
from al_ray.serving.feedback import UncertainRows, UncertainRowStore
from al_ray.serving.spec import VersionSpec

__all__ = [
    "RouterClient",
    "RouterHTTPError",
    "ServingError",
    "UncertainRowStore",
    "UncertainRows",
    "VersionSpec",
]
