"""Model adapters that give one face to scikit-learn (and later torch) classifiers."""

from al_ray.models.prior import PriorClassifier
from al_ray.models.sklearn_adapter import ESTIMATORS, SklearnClassifier, build_estimator

__all__ = ["ESTIMATORS", "PriorClassifier", "SklearnClassifier", "build_estimator"]
