"""Retraining: in the driver for one scikit-learn model, on Ray actors for committees."""

from al_ray.training.committee_actors import CommitteeTrainer
from al_ray.training.factory import build_trainer
from al_ray.training.local import LocalTrainer

__all__ = ["CommitteeTrainer", "LocalTrainer", "build_trainer"]
