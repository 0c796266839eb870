"""Batch-diverse strategies: uncertain candidates first, then a diverse batch of them.

Scoring keeps the ``candidate_factor * n`` rows with the highest margin
utility (a cheap measure, computed in every scoring actor), and :meth:`choose`
picks ``n`` of those with a diversity-aware selector. Every selector works in
chunks or in factorized form, so memory stays linear in the candidate count.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from al_ray.errors import StrategyError
from al_ray.strategies.base import Need, QueryStrategy, ScoringBatch, SelectionContext
from al_ray.strategies.diversity import badge_select, cluster_margin_select, greedy_k_center, information_density
from al_ray.strategies.expected_change import gradient_embedding_factors
from al_ray.strategies.measures import entropy, margin
from al_ray.strategies.selection import Selection, empty_selection, uniform_utility

__all__ = [
    "BadgeSampling",
    "ClusterMarginSampling",
    "CoreSetSampling",
    "InformationDensitySampling",
    "KCenterSampling",
]

logger = logging.getLogger(__name__)


class _BatchDiverse(QueryStrategy):
    """Shared parameter handling and candidate-count checks."""

    default_candidate_factor: ClassVar[int] = 10
    extra_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, candidate_factor: int | None = None, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.extra_params))
        if unknown:
            allowed = ", ".join(("candidate_factor", *self.extra_params))
            raise StrategyError(f"strategy {self.name!r} takes no parameter(s) {unknown}; allowed: {allowed}")
        factor = self.default_candidate_factor if candidate_factor is None else candidate_factor
        if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            raise StrategyError(
                f"strategy.params.candidate_factor must be a whole number >= 1, got {candidate_factor!r}"
            )
        self.candidate_factor = factor
        self.params = params

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return margin(batch.probabilities)

    def choose(
        self, candidates: ScoringBatch, utilities: np.ndarray, n: int, seed: int, context: SelectionContext
    ) -> Selection:
        if len(candidates) == 0 or n == 0:
            return empty_selection()
        if len(candidates) < self.candidate_count(n):
            logger.info(
                "%s: %d candidates are left, fewer than candidate_factor * n = %d; choosing from all of them",
                self.name, len(candidates), self.candidate_count(n),
            )
        if n > len(candidates):
            logger.info("%s: %d rows requested, only %d candidates; taking them all", self.name, n, len(candidates))
        positions = self._positions(candidates, utilities, min(n, len(candidates)), seed, context)
        return Selection(candidates.row_ids[positions], np.asarray(utilities, dtype=np.float64)[positions])

    def _positions(self, candidates, utilities, n, seed, context) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(candidate_factor={self.candidate_factor})"


class CoreSetSampling(_BatchDiverse):
    """Greedy k-center over the labeled set and the most uncertain candidates.

    Reference: O. Sener and S. Savarese, "Active learning for convolutional
    neural networks: a core-set approach", ICLR 2018.
    """

    name = "coreset"
    needs = frozenset({Need.PROBABILITIES})
    candidate_needs = frozenset({Need.FEATURES})
    context_needs = frozenset({"labeled_features"})
    description = "greedy k-center on features among the top-margin candidates"

    def _positions(self, candidates, utilities, n, seed, context) -> np.ndarray:
        return greedy_k_center(candidates.features, context.labeled_features, n)


class KCenterSampling(_BatchDiverse):
    """Greedy k-center on features among random candidates; needs no model.

    The cold-start strategy: the loop uses it in place of any strategy that
    needs a model until the labels hold two classes. It is core-set without
    the uncertainty filter, so it also serves as a pure-diversity baseline.
    """

    name = "kcenter"
    needs = frozenset()
    candidate_needs = frozenset({Need.FEATURES})
    context_needs = frozenset({"labeled_features"})
    default_candidate_factor = 20
    description = "greedy k-center on features among random candidates; needs no model"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return uniform_utility(batch.row_ids, seed)

    def _positions(self, candidates, utilities, n, seed, context) -> np.ndarray:
        return greedy_k_center(candidates.features, context.labeled_features, n)


class BadgeSampling(_BatchDiverse):
    """k-means++ seeding on gradient embeddings, in factorized form.

    Reference: J. T. Ash, C. Zhang, A. Krishnamurthy, J. Langford and
    A. Agarwal, "Deep batch active learning by diverse, uncertain gradient
    lower bounds", ICLR 2020.
    """

    name = "badge"
    needs = frozenset({Need.PROBABILITIES})
    candidate_needs = frozenset({Need.PROBABILITIES, Need.EMBEDDINGS})
    description = "k-means++ on gradient embeddings (p - onehot) x last-layer input"

    def _positions(self, candidates, utilities, n, seed, context) -> np.ndarray:
        factors, _ = gradient_embedding_factors(candidates.probabilities)
        return badge_select(factors, candidates.embeddings, n, seed)


class ClusterMarginSampling(_BatchDiverse):
    """Round-robin over clusters of the lowest-margin rows, smallest cluster first.

    Reference: G. Citovsky, G. DeSalvo, C. Gentile, L. Karydas, A. Rajagopalan,
    A. Rostamizadeh and S. Kumar, "Batch active learning at scale", NeurIPS 2021.
    """

    name = "cluster_margin"
    needs = frozenset({Need.PROBABILITIES})
    candidate_needs = frozenset({Need.FEATURES})
    extra_params = ("n_clusters",)
    description = "round-robin over clusters of the lowest-margin candidates"

    def _positions(self, candidates, utilities, n, seed, context) -> np.ndarray:
        # NOTE: the paper clusters the whole pool once; here the candidate set is
        # clustered each round, which costs one MiniBatchKMeans fit per round.
        return cluster_margin_select(
            utilities, candidates.features, n, seed, n_clusters=self.params.get("n_clusters")
        )


class InformationDensitySampling(_BatchDiverse):
    """Entropy weighted by mean cosine similarity to a sample of the pool.

    Reference: B. Settles and M. Craven, "An analysis of active learning
    strategies for sequence labeling tasks", EMNLP 2008.
    """

    name = "information_density"
    needs = frozenset({Need.PROBABILITIES})
    candidate_needs = frozenset({Need.FEATURES})
    context_needs = frozenset({"pool_sample"})
    extra_params = ("beta",)
    description = "entropy x (mean cosine similarity to the pool) ** beta"

    def utility(self, batch: ScoringBatch, seed: int) -> np.ndarray:
        return entropy(batch.probabilities)

    def _positions(self, candidates, utilities, n, seed, context) -> np.ndarray:
        # Without a pool sample (a direct query() call), the candidates stand in for the pool.
        reference = context.pool_sample if context.pool_sample is not None else candidates.features
        weighted = information_density(
            utilities, candidates.features, reference, beta=float(self.params.get("beta", 1.0))
        )
        # Highest weighted utility first; ties by position, which follows the scorer's seeded order.
        return np.argsort(-weighted, kind="stable")[:n]
