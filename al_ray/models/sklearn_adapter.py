"""One face for scikit-learn classifiers: full class list, aligned probabilities.

The labeled set of an early round often lacks some classes, so the estimator's
own ``classes_`` is a subset of the task's classes. :class:`SklearnClassifier`
always returns probabilities of shape ``(n_rows, n_classes)`` over the full,
fixed class list, with zeros for classes the estimator has not seen.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from al_ray.errors import ModelError

__all__ = ["ESTIMATORS", "SklearnClassifier", "build_estimator"]

logger = logging.getLogger(__name__)

# Short names accepted in configs; any other value is read as a dotted import path.
ESTIMATORS: dict[str, str] = {
    "logistic_regression": "sklearn.linear_model.LogisticRegression",
    "random_forest": "sklearn.ensemble.RandomForestClassifier",
    "extra_trees": "sklearn.ensemble.ExtraTreesClassifier",
    "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
    "knn": "sklearn.neighbors.KNeighborsClassifier",
    "gaussian_nb": "sklearn.naive_bayes.GaussianNB",
    "mlp": "sklearn.neural_network.MLPClassifier",
    "svc": "sklearn.svm.SVC",
}


def build_estimator(
    name: str, params: Mapping[str, Any], *, standardize: bool, seed: int
) -> BaseEstimator:
    """Build an unfitted estimator from a config name or dotted path.

    ``random_state`` is set from ``seed`` when the estimator takes one and the
    config does not fix it, so every fit is repeatable from the run's root seed.
    """
    path = ESTIMATORS.get(name, name)
    module_name, _, class_name = path.rpartition(".")
    if not module_name:
        raise ModelError(
            f"unknown estimator {name!r}; use one of {', '.join(sorted(ESTIMATORS))} "
            "or a dotted import path such as sklearn.linear_model.LogisticRegression"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(
            f"cannot import estimator {path!r} ({exc}); use one of "
            f"{', '.join(sorted(ESTIMATORS))} or an importable dotted path"
        ) from None
    if not hasattr(cls, "predict_proba"):
        raise ModelError(
            f"estimator {path!r} has no predict_proba; active learning needs class "
            "probabilities, so choose a probabilistic classifier"
        )
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ModelError(
            f"estimator {path!r} takes no parameter(s) {unknown}; "
            f"accepted: {', '.join(sorted(accepted))}"
        )
    kwargs = dict(params)
    if "random_state" in accepted and "random_state" not in kwargs:
        kwargs["random_state"] = seed % (2**32)
    if name == "svc" or cls.__name__ == "SVC":
        kwargs.setdefault("probability", True)
    try:
        estimator = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"cannot build estimator {path!r} with {kwargs}: {exc}") from None
    # Some classes offer predict_proba only for some parameters (scikit-learn's
    # available_if): SGDClassifier only with a probabilistic loss, SVC only
    # with probability=True. The class has the attribute; the instance may not.
    if not hasattr(estimator, "predict_proba"):
        raise ModelError(
            f"estimator {path!r} with {kwargs} has no predict_proba for these parameters; "
            "choose parameters that give class probabilities (for SGDClassifier, "
            "loss: log_loss or modified_huber)"
        )
    return make_pipeline(StandardScaler(), estimator) if standardize else estimator


class SklearnClassifier:
    """A scikit-learn classifier over a fixed list of classes.

    Labels passed to :meth:`fit` are class indices into ``classes``. The object
    pickles with its fitted estimator, which is how it travels to scoring
    actors through the object store.
    """

    def __init__(self, estimator: BaseEstimator, classes: Sequence[str]) -> None:
        if len(classes) < 2:
            raise ModelError(f"a classifier needs at least 2 classes, got {list(classes)}")
        self.estimator = estimator
        self.classes: tuple[str, ...] = tuple(classes)
        self._fitted: BaseEstimator | None = None
        self._seen: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_fitted(self) -> bool:
        return self._seen is not None

    def fit(self, features: np.ndarray, labels: np.ndarray) -> "SklearnClassifier":
        """Fit a fresh clone of the estimator on ``features`` and class indices ``labels``."""
        labels = np.asarray(labels, dtype=np.int64)
        features = _as_float64(features)
        if features.shape[0] != labels.shape[0] or features.shape[0] == 0:
            raise ModelError(
                f"fit needs matching, non-empty features and labels, "
                f"got {features.shape[0]} rows and {labels.shape[0]} labels"
            )
        if labels.min() < 0 or labels.max() >= self.n_classes:
            raise ModelError(f"labels must be class indices in [0, {self.n_classes}), got {labels.max()}")
        seen = np.unique(labels)
        if seen.size == 1:
            # One class seen so far: every row gets that class with probability 1.
            # scikit-learn classifiers reject single-class training sets.
            logger.warning("only class %r is labeled; predicting it for every row", self.classes[seen[0]])
            self._fitted = None
        else:
            fitted = clone(self.estimator)
            try:
                fitted.fit(features, labels)
            except ValueError as exc:
                raise ModelError(f"fitting {type(self.estimator).__name__} failed: {exc}") from exc
            self._fitted = fitted
        self._seen = seen
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Return probabilities over all classes, shape ``(n_rows, n_classes)``, float64."""
        if self._seen is None:
            raise ModelError("the model is not fitted; call fit() before predict_proba()")
        out = np.zeros((features.shape[0], self.n_classes), dtype=np.float64)
        if features.shape[0] == 0:
            return out
        if self._fitted is None:
            out[:, self._seen[0]] = 1.0
            return out
        proba = self._fitted.predict_proba(_as_float64(features))
        # The fitted estimator's columns follow its own classes_, a subset of our indices.
        out[:, np.asarray(self._fitted.classes_, dtype=np.int64)] = proba
        return out

    def embed(self, features: np.ndarray) -> np.ndarray:
        """Return the input of the final estimator, shape ``(n_rows, n_dims)``, float64.

        For a linear model this is what its weights multiply, so gradient-based
        strategies (expected gradient length, BADGE) get the exact last-layer
        input. For other estimators the (scaled) features stand in for it.
        """
        features = _as_float64(features)
        if features.shape[0] == 0 or not hasattr(self.estimator, "steps"):
            return features
        if self._fitted is None:
            return features
        return np.asarray(self._fitted[:-1].transform(features), dtype=np.float64)

    def fitted_estimators(self) -> dict[str, BaseEstimator]:
        """Return the fitted scikit-learn estimator by name, for logging as an MLflow model.

        Empty while unfitted, or when only one class was labeled and no
        estimator was fitted.
        """
        return {} if self._fitted is None else {"model": self._fitted}

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return the most likely class index per row, shape ``(n_rows,)``."""
        return self.predict_proba(features).argmax(axis=1)


def _as_float64(features: np.ndarray) -> np.ndarray:
    # scikit-learn keeps float32 input in float32, where the same row scored in
    # batches of different shapes differs by about 1e-7. In float64 the
    # difference shrinks to a few ulps, which selection treats as a tie.
    return np.asarray(features, dtype=np.float64)
