"""A committee of classifiers: consensus and per-member probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from al_ray.errors import ModelError
from al_ray.models.sklearn_adapter import SklearnClassifier

__all__ = ["Committee"]


class Committee:
    """Fitted committee members over one class list.

    Every member returns probabilities over the full class list (members whose
    bootstrap bag missed some classes give those classes probability 0), so
    the stacked array is well formed. The consensus is the members' mean.
    """

    def __init__(self, members: Sequence[SklearnClassifier]) -> None:
        if len(members) < 2:
            raise ModelError(f"a committee needs at least 2 members, got {len(members)}")
        classes = {member.classes for member in members}
        if len(classes) != 1:
            raise ModelError("committee members disagree on the class list; build them from one dataset")
        self.members = list(members)
        self.classes: tuple[str, ...] = members[0].classes

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def committee_proba(self, features: np.ndarray) -> np.ndarray:
        """Return each member's probabilities, shape ``(n_members, n_rows, n_classes)``."""
        return np.stack([member.predict_proba(features) for member in self.members])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Return the consensus (mean) probabilities, shape ``(n_rows, n_classes)``."""
        return self.committee_proba(features).mean(axis=0)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.predict_proba(features).argmax(axis=1)

    def fitted_estimators(self) -> dict[str, object]:
        """Return every member's fitted estimator, named ``member_<index>``."""
        named = {}
        for index, member in enumerate(self.members):
            for estimator in member.fitted_estimators().values():
                named[f"member_{index}"] = estimator
        return named

    def embed(self, features: np.ndarray) -> np.ndarray:
        """Return the first member's last-layer input (members share one preprocessing)."""
        return self.members[0].embed(features)
