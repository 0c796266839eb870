"""Retrain one scikit-learn model as a Ray task, off the driver."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from al_ray.models import SklearnClassifier

__all__ = ["TaskTrainer"]


def _fit(estimator: BaseEstimator, classes: tuple[str, ...], features: np.ndarray, labels: np.ndarray):
    return SklearnClassifier(estimator, classes).fit(features, labels)


class TaskTrainer:
    """Fit a fresh clone of one estimator on every labeled row, in a Ray task each round.

    The driver keeps serving the label store and the scorer while the fit
    runs, and on a cluster the fit lands on whichever node has the CPUs.
    Ray retries a task that dies with its worker (``max_retries``). The fit
    depends on its inputs only, so the retry returns the same model.

    Parameters
    ----------
    estimator : the unfitted estimator, cloned for every fit.
    classes : the full class list.
    num_cpus : CPUs reserved for the task.
    """

    needs_ray = True

    def __init__(self, estimator: BaseEstimator, classes: Sequence[str], *, num_cpus: float = 1.0) -> None:
        self.estimator = estimator
        self.classes = tuple(classes)
        self.num_cpus = num_cpus
        self._remote = None

    def fit(self, features: np.ndarray, labels: np.ndarray, round_index: int, previous=None) -> SklearnClassifier:
        import ray

        if self._remote is None:
            self._remote = ray.remote(_fit).options(num_cpus=self.num_cpus, max_retries=2, name="al_ray.fit")
        return ray.get(self._remote.remote(self.estimator, self.classes, features, labels))

    def close(self) -> None:
        """Release nothing: each fit is a task that ends with the fit."""
