"""Uncertainty sampling strategies and the random baseline."""

from __future__ import annotations

import numpy as np

from al_ray.strategies.base import Need, QueryStrategy, ScoringBatch
from al_ray.strategies.measures import entropy, least_confidence, margin
from al_ray.strategies.selection import uniform_utility

__all__ = [
    "EntropySampling",
    "LeastConfidenceSampling",
    "MarginSampling",
    "RandomSampling",
]


class RandomSampling(QueryStrategy):
    """Uniform random sampling: the baseline every strategy must beat."""

    name = "random"
    needs = frozenset()
    description = "uniform at random, seeded; the baseline"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return uniform_utility(batch.row_ids, seed)


class LeastConfidenceSampling(QueryStrategy):
    """Query the rows whose most likely class has the lowest probability."""

    name = "least_confidence"
    needs = frozenset({Need.PROBABILITIES})
    description = "1 - max class probability"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return least_confidence(batch.probabilities)


class MarginSampling(QueryStrategy):
    """Query the rows with the smallest gap between the two likeliest classes.

    Reference: T. Scheffer, C. Decomain and S. Wrobel, "Active hidden Markov
    models for information extraction", IDA 2001.
    """

    name = "margin"
    needs = frozenset({Need.PROBABILITIES})
    description = "1 - (first - second largest class probability)"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return margin(batch.probabilities)


class EntropySampling(QueryStrategy):
    """Query the rows whose predicted class distribution has the highest entropy.

    Reference: C. E. Shannon, "A mathematical theory of communication", 1948;
    used for active learning in Settles (2009), section 3.1.
    """

    name = "entropy"
    needs = frozenset({Need.PROBABILITIES})
    description = "Shannon entropy of the class probabilities, in nats"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return entropy(batch.probabilities)
