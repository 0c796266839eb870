"""Build the trainer that a config describes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from al_ray.config import CommitteeConfig, RunConfig
from al_ray.models import build_estimator
from al_ray.seeding import derive_seed, spawn_seeds
from al_ray.training.committee_actors import CommitteeTrainer
from al_ray.training.local import LocalTrainer
from al_ray.training.task import TaskTrainer

__all__ = ["DEFAULT_COMMITTEE_SIZE", "build_trainer"]

logger = logging.getLogger(__name__)

# Members bagged from model.estimator when a strategy needs a committee and the
# config names none. At 0.2 CPU per member actor, 5 fit on a 2-CPU machine.
DEFAULT_COMMITTEE_SIZE = 5


def build_trainer(
    config: RunConfig,
    classes: Sequence[str],
    *,
    needs_committee: bool = False,
    n_features: int | None = None,
    storage_path: str | Path | None = None,
):
    """Return the trainer of one model (a Ray task, or in-process), or a Ray-actor trainer for a committee.

    A strategy that reads committee probabilities gets a committee even when
    the config names none: ``DEFAULT_COMMITTEE_SIZE`` bagged copies of
    ``model.estimator``. Estimators are built here, before any output is
    written, so an unknown estimator or parameter fails early.
    """
    model = config.model
    if model.kind == "torch":
        return _torch_trainer(config, classes, n_features, storage_path)
    committee = model.committee
    if committee is None and needs_committee:
        committee = CommitteeConfig(size=DEFAULT_COMMITTEE_SIZE)
        logger.info(
            "strategy %s needs a committee and model.committee is unset: bagging %d copies of %s",
            config.strategy.name, DEFAULT_COMMITTEE_SIZE, model.estimator,
        )
    if committee is None:
        estimator = build_estimator(
            model.estimator, model.params, standardize=model.standardize, seed=derive_seed(config.seed, "model")
        )
        if model.fit_on == "ray":
            return TaskTrainer(estimator, classes, num_cpus=model.fit_num_cpus)
        return LocalTrainer(estimator, classes)
    # Each member's estimator gets its own random_state, spawned from the root seed.
    seeds = spawn_seeds(config.seed, "committee-estimator", committee.n_members)
    if committee.members is not None:
        specs = [(member.estimator, member.params) for member in committee.members]
    else:
        specs = [(model.estimator, model.params)] * committee.n_members
    estimators = [
        build_estimator(name, params, standardize=model.standardize, seed=seed)
        for (name, params), seed in zip(specs, seeds)
    ]
    return CommitteeTrainer(
        estimators,
        classes,
        derive_seed(config.seed, "committee-bootstrap"),
        bootstrap=committee.bootstrap,
        actor_num_cpus=committee.actor_num_cpus,
    )


def _torch_trainer(config: RunConfig, classes, n_features, storage_path):
    from al_ray.training.torch_trainers import DriverTorchTrainer, RayTrainTorchTrainer

    model = config.model
    if n_features is None:
        raise ValueError("a torch trainer needs n_features")
    args = (model.architecture, model.params, n_features, classes, model.train, config.seed)
    if model.fit_on == "driver":
        return DriverTorchTrainer(*args)
    if storage_path is None:
        raise ValueError("Ray Train needs a storage_path for its checkpoints")
    return RayTrainTorchTrainer(*args, storage_path=storage_path)
