"""Query strategies: pure numpy measures and selectors, never Ray."""

from al_ray.strategies.base import Need, QueryStrategy, ScoringBatch, SelectionContext
from al_ray.strategies.measures import entropy, least_confidence, margin
from al_ray.strategies.registry import STRATEGIES, available_strategies, make_strategy
from al_ray.strategies.selection import Selection, merge_selections, select_top_n, tie_keys
from al_ray.strategies.uncertainty import (
    EntropySampling,
    LeastConfidenceSampling,
    MarginSampling,
    RandomSampling,
)

__all__ = [
    "STRATEGIES",
    "EntropySampling",
    "LeastConfidenceSampling",
    "MarginSampling",
    "Need",
    "QueryStrategy",
    "RandomSampling",
    "ScoringBatch",
    "SelectionContext",
    "Selection",
    "available_strategies",
    "entropy",
    "least_confidence",
    "make_strategy",
    "margin",
    "merge_selections",
    "select_top_n",
    "tie_keys",
]
