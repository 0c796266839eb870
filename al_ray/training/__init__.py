"""Retraining: a Ray task (or the driver) for one scikit-learn model, Ray actors for committees."""

from al_ray.training.committee_actors import CommitteeTrainer
from al_ray.training.factory import build_trainer
from al_ray.training.local import LocalTrainer
from al_ray.training.task import TaskTrainer

__all__ = ["CommitteeTrainer", "LocalTrainer", "TaskTrainer", "build_trainer"]
