"""Build a config's model and strategy on this machine, as the loop does before its first round.

``al-ray check`` and ``al-ray submit`` call :func:`check_model`, so a
misspelled estimator, an unknown parameter or a strategy parameter fails in
under a second here, not minutes later in a job on the cluster. Nothing is
fitted and Ray is not started.

A job that runs in a container image (``cluster.image_uri``) or installs
packages (``cluster.pip``) may use an estimator whose package exists only on
the cluster. Such an estimator is not built here (see :func:`check_model`).
"""

from __future__ import annotations

import importlib.util
import logging
import math
from dataclasses import dataclass

__all__ = ["ModelCheck", "check_model"]

logger = logging.getLogger(__name__)

# Class names stand in for the data's: building a trainer needs a class list, not its values.
_PLACEHOLDER_CLASSES = ("class_0", "class_1")
# Feature count for building an mlp here; the run builds it with the data's count.
_PLACEHOLDER_FEATURES = 8


@dataclass(frozen=True)
class ModelCheck:
    """The outcome of building the model: a description of it, or the reason it was not built."""

    built: bool
    detail: str


def check_model(config) -> ModelCheck:
    """Build the strategy and the model (or committee) that a run of ``config`` trains.

    Returns
    -------
    ModelCheck
        ``built`` false, with the reason, when the estimator's module (or
        torch) cannot be imported here and the job brings its own packages
        through ``cluster.image_uri`` or ``cluster.pip``.

    Raises
    ------
    ModelError
        Unknown estimator or architecture, unknown or invalid parameter, no
        ``predict_proba``; the message names the value and the fix.
    StrategyError
        Unknown strategy parameter.
    """
    from al_ray.strategies import Need, make_strategy

    strategy = make_strategy(config.strategy.name, config.strategy.params)
    model = config.model
    missing = _missing_module(config)
    if missing is not None:
        return ModelCheck(False, missing)
    if model.kind == "torch":
        return ModelCheck(True, _build_torch(config))
    from al_ray.training import build_trainer

    needs_committee = Need.COMMITTEE_PROBABILITIES in strategy.needs
    build_trainer(config, _PLACEHOLDER_CLASSES, needs_committee=needs_committee)
    if model.committee is not None and model.committee.members is not None:
        names = ", ".join(member.estimator for member in model.committee.members)
        return ModelCheck(True, f"committee of {names} builds (strategy {strategy.name})")
    if model.committee is not None or needs_committee:
        return ModelCheck(True, f"committee of {model.estimator} builds (strategy {strategy.name})")
    return ModelCheck(True, f"{model.estimator} builds (strategy {strategy.name})")


def _estimator_modules(config) -> list[tuple[str, str]]:
    """Return ``(estimator, module)`` for every estimator of the config, in config order."""
    from al_ray.models import ESTIMATORS

    model = config.model
    names = [model.estimator]
    if model.committee is not None and model.committee.members is not None:
        names = [member.estimator for member in model.committee.members]
    modules = []
    for name in names:
        module = ESTIMATORS.get(name, name).rpartition(".")[0]
        if module:
            modules.append((name, module))
    return modules


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _missing_module(config) -> str | None:
    """Return why the model is not built here: a module this machine lacks and the job brings."""
    cluster = config.cluster
    if cluster.image_uri is not None:
        source = "cluster.image_uri"
    elif cluster.pip is not None:
        source = "cluster.pip"
    else:
        return None
    if config.model.kind == "torch":
        required = [("torch", "torch")]
    else:
        required = _estimator_modules(config)
    for name, module in required:
        if not _importable(module):
            return (
                f"{name}: module {module!r} is not installed here, so the model is built only on the cluster, "
                f"which gets it from {source}"
            )
    return None


def _build_torch(config) -> str:
    from al_ray.models.architectures import build_module

    model = config.model
    if model.architecture == "cnn":
        # The cnn checks n_features against its image_shape; the run checks the data's count against it.
        shape = model.params.get("image_shape", [1, 28, 28])
        n_features = math.prod(shape) if isinstance(shape, (list, tuple)) and shape and all(
            isinstance(side, int) for side in shape
        ) else _PLACEHOLDER_FEATURES
    else:
        n_features = _PLACEHOLDER_FEATURES
    build_module(model.architecture, n_features, len(_PLACEHOLDER_CLASSES), model.params, seed=0)
    return f"torch {model.architecture} builds (the data's feature count is checked when the run loads it)"
