"""Compute what a strategy needs for one batch of pool rows, and keep its candidates."""

from __future__ import annotations

import numpy as np

from al_ray.errors import ScoringError
from al_ray.strategies import Need, QueryStrategy, ScoringBatch
from al_ray.strategies.base import positions_of
from al_ray.strategies.selection import select_top_n

__all__ = ["CandidateSet", "build_batch", "candidates_for_batch", "merge_candidates"]


class CandidateSet:
    """Candidate rows with their utilities and the inputs the strategy's ``choose`` needs."""

    def __init__(self, batch: ScoringBatch, utilities: np.ndarray) -> None:
        self.batch = batch
        self.utilities = np.asarray(utilities, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.batch)


def build_batch(needs: frozenset[Need], model, row_ids: np.ndarray, features: np.ndarray) -> ScoringBatch:
    """Return a :class:`ScoringBatch` holding exactly the inputs in ``needs``."""
    fields: dict[str, np.ndarray] = {}
    if Need.PROBABILITIES in needs:
        probabilities = model.predict_proba(features)
        if probabilities.shape != (features.shape[0], model.n_classes):
            raise ScoringError(
                f"the model returned probabilities of shape {probabilities.shape}, "
                f"expected ({features.shape[0]}, {model.n_classes})"
            )
        fields["probabilities"] = probabilities
    if Need.COMMITTEE_PROBABILITIES in needs:
        if not hasattr(model, "committee_proba"):
            raise ScoringError(
                f"this strategy needs a committee, but the model is a single {type(model).__name__}; "
                "set model.committee in the config"
            )
        fields["committee_probabilities"] = model.committee_proba(features)
    if Need.EMBEDDINGS in needs:
        fields["embeddings"] = model.embed(features)
    if Need.FEATURES in needs:
        fields["features"] = features
    return ScoringBatch(row_ids=row_ids, **fields)


def candidates_for_batch(
    strategy: QueryStrategy,
    model,
    row_ids: np.ndarray,
    features: np.ndarray,
    excluded: np.ndarray,
    n: int,
    seed: int,
) -> CandidateSet:
    """Score one batch and return its top candidates, with the inputs ``choose`` needs.

    ``excluded`` is a sorted int64 array of row ids (labeled or already
    queried) that are dropped before scoring.
    """
    row_ids = np.asarray(row_ids, dtype=np.int64)
    if excluded.size:
        keep = ~np.isin(row_ids, excluded)
        row_ids, features = row_ids[keep], features[keep]
    batch = build_batch(strategy.needs | strategy.candidate_needs, model, row_ids, features)
    utilities = strategy.utility(batch, seed) if len(batch) else np.empty(0, dtype=np.float64)
    shortlist = select_top_n(row_ids, utilities, strategy.candidate_count(n), seed)
    shortlisted = batch.subset(positions_of(row_ids, shortlist.row_ids))
    # Only the inputs choose() reads travel on; the rest would be dead weight.
    payload = {need.value: shortlisted.field(need) for need in strategy.candidate_needs}
    return CandidateSet(ScoringBatch(row_ids=shortlisted.row_ids, **payload), shortlist.utilities)


def merge_candidates(parts: list[CandidateSet], count: int, seed: int, strategy: QueryStrategy) -> CandidateSet:
    """Merge per-batch candidate sets into the global top ``count``, inputs kept aligned."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return CandidateSet(ScoringBatch(row_ids=np.empty(0, dtype=np.int64)), np.empty(0))
    row_ids = np.concatenate([part.batch.row_ids for part in parts])
    utilities = np.concatenate([part.utilities for part in parts])
    best = select_top_n(row_ids, utilities, count, seed)
    positions = positions_of(row_ids, best.row_ids)
    payload = {}
    for need in strategy.candidate_needs:
        axis = 1 if need is Need.COMMITTEE_PROBABILITIES else 0
        joined = np.concatenate([part.batch.field(need) for part in parts], axis=axis)
        payload[need.value] = np.take(joined, positions, axis=axis)
    return CandidateSet(ScoringBatch(row_ids=best.row_ids, **payload), best.utilities)
