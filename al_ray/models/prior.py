"""The model of a cold start: the label prior, before two classes are labeled.

A classifier cannot be fitted on no labels, and scikit-learn rejects a
training set of one class. Until the labels contain two classes, the loop uses
this model. It predicts the labeled class frequencies for every row, uniform
when nothing is labeled. Evaluation, saving and the stop set then work as in
every other round, while strategies that need a fitted model fall back to a
diversity strategy on features.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from al_ray.errors import ModelError

__all__ = ["PriorClassifier"]


class PriorClassifier:
    """Predict the class frequencies of the labels it was given, the same for every row.

    Parameters
    ----------
    classes : sequence of str
        The full class list; labels are indices into it.
    labels : array of int, shape (n_labeled,)
        Class indices of the labeled rows; may be empty.
    """

    def __init__(self, classes: Sequence[str], labels: np.ndarray) -> None:
        if len(classes) < 2:
            raise ModelError(f"a classifier needs at least 2 classes, got {list(classes)}")
        self.classes: tuple[str, ...] = tuple(classes)
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ModelError(
                f"labels must be class indices in [0, {len(self.classes)}), "
                f"got values from {labels.min()} to {labels.max()}"
            )
        counts = np.bincount(labels, minlength=len(self.classes)).astype(np.float64)
        self.prior = counts / counts.sum() if labels.size else np.full(len(self.classes), 1.0 / len(self.classes))
        """Class probabilities given to every row, shape ``(n_classes,)``."""

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Return the prior for every row, shape ``(n_rows, n_classes)``, float64."""
        return np.tile(self.prior, (np.asarray(features).shape[0], 1))

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return the most frequent labeled class (the first class on ties) for every row."""
        return np.full(np.asarray(features).shape[0], int(np.argmax(self.prior)), dtype=np.int64)

    def embed(self, features: np.ndarray) -> np.ndarray:
        """Return the features as float64: with no fitted layers, they are the last-layer input."""
        return np.asarray(features, dtype=np.float64)

    def fitted_estimators(self) -> dict[str, object]:
        """Return nothing: no estimator was fitted, so there is no model to log."""
        return {}

    def __repr__(self) -> str:
        return f"PriorClassifier(classes={len(self.classes)}, prior={np.round(self.prior, 3).tolist()})"
