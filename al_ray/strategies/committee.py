"""Query-by-committee strategies: disagreement among committee members.

Reference: H. S. Seung, M. Opper and H. Sompolinsky, "Query by committee",
COLT 1992. The committee itself (members on Ray actors) lives in
``al_ray.training``; these strategies only read its members' probabilities.
"""

from __future__ import annotations

import numpy as np

from al_ray.strategies.base import Need, QueryStrategy, ScoringBatch
from al_ray.strategies.committee_measures import (
    bald,
    consensus_entropy,
    max_disagreement,
    variation_ratios,
    vote_entropy,
)

__all__ = [
    "BaldSampling",
    "ConsensusEntropySampling",
    "MaxDisagreementSampling",
    "VariationRatiosSampling",
    "VoteEntropySampling",
]

_COMMITTEE = frozenset({Need.COMMITTEE_PROBABILITIES})


class VoteEntropySampling(QueryStrategy):
    """Entropy of the members' hard votes (Dagan and Engelson 1995)."""

    name = "vote_entropy"
    needs = _COMMITTEE
    description = "entropy of the committee's votes, in nats"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return vote_entropy(batch.committee_probabilities)


class VariationRatiosSampling(QueryStrategy):
    """Share of members outside the modal vote (Freeman 1965; Gal, Islam and Ghahramani 2017).

    On a torch model the members are MC-dropout samples, which gives the
    variation ratios acquisition of "Deep Bayesian active learning with image
    data", ICML 2017.
    """

    name = "variation_ratios"
    needs = _COMMITTEE
    description = "1 - share of committee votes for the modal class"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return variation_ratios(batch.committee_probabilities)


class ConsensusEntropySampling(QueryStrategy):
    """Entropy of the committee's mean probabilities."""

    name = "consensus_entropy"
    needs = _COMMITTEE
    description = "entropy of the committee's mean probabilities, in nats"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return consensus_entropy(batch.committee_probabilities)


class MaxDisagreementSampling(QueryStrategy):
    """Largest KL divergence of a member from the consensus.

    The mean over members would rank rows exactly as :class:`BaldSampling`
    does (the two are equal), so this strategy takes the maximum, as modAL's
    ``max_disagreement_sampling`` does.
    """

    name = "max_disagreement"
    needs = _COMMITTEE
    description = "max KL divergence of a member from the consensus"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return max_disagreement(batch.committee_probabilities, reduction="max")


class BaldSampling(QueryStrategy):
    """Mutual information between the label and the member (ensemble BALD).

    Reference: N. Houlsby, F. Huszar, Z. Ghahramani and M. Lengyel, "Bayesian
    active learning for classification and preference learning", 2011.
    """

    name = "bald"
    needs = _COMMITTEE
    description = "consensus entropy minus mean member entropy (mutual information)"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return bald(batch.committee_probabilities)
