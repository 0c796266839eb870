"""The labeling service: a FastAPI app with the annotators' HTTP API and the labeling page."""

from al_ray.labeling.service.app import create_app
from al_ray.labeling.service.rows import RowSource

__all__ = ["RowSource", "create_app"]
