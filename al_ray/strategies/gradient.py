"""Expected model change: expected gradient length for softmax classifiers."""

from __future__ import annotations

import numpy as np

from al_ray.strategies.base import Need, QueryStrategy, ScoringBatch
from al_ray.strategies.expected_change import expected_gradient_length

__all__ = ["ExpectedGradientLengthSampling"]


class ExpectedGradientLengthSampling(QueryStrategy):
    """Expected norm of the last layer's gradient if the row were labeled.

    Reference: B. Settles, M. Craven and S. Ray, "Multiple-instance active
    learning", NIPS 2008. Closed form from probabilities and embeddings, so
    memory grows with n_rows * (n_classes + n_dims).
    """

    name = "expected_gradient_length"
    needs = frozenset({Need.PROBABILITIES, Need.EMBEDDINGS})
    description = "expected last-layer gradient norm (linear models, network heads)"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return expected_gradient_length(batch.probabilities, batch.embeddings)
