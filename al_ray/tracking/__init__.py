"""Experiment tracking in MLflow."""

from al_ray.tracking.mlflow_tracker import PIP_REQUIREMENTS, MlflowTracker

__all__ = ["PIP_REQUIREMENTS", "MlflowTracker"]
