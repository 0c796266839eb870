"""Uncertainty sampling strategies and the random baseline."""

from __future__ import annotations

import numpy as np

from al_ray.strategies.base import Need, QueryStrategy, ScoringBatch
from al_ray.strategies.measures import entropy, least_confidence, margin
from al_ray.strategies.selection import tie_keys

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
        # A uniform draw per row from (seed, row_id) alone, so batching cannot
        # change which rows win. The top 53 bits give an exact float64 in [0, 1).
        keys = tie_keys(batch.row_ids, seed ^ 0x5DEECE66D)
        return (keys >> np.uint64(11)).astype(np.float64) / float(1 << 53)


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
