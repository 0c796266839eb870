"""Retrain one scikit-learn model in the driver process."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from al_ray.models import SklearnClassifier

__all__ = ["LocalTrainer"]


class LocalTrainer:
    """Fit a fresh clone of one estimator on every labeled row, each round."""

    needs_ray = False

    def __init__(self, estimator: BaseEstimator, classes: Sequence[str]) -> None:
        self.estimator = estimator
        self.classes = tuple(classes)

    def fit(self, features: np.ndarray, labels: np.ndarray, round_index: int, previous=None) -> SklearnClassifier:
        return SklearnClassifier(self.estimator, self.classes).fit(features, labels)

    def close(self) -> None:
        """Release nothing: the local trainer holds no processes."""
