"""Strategies by name: the one place that maps config names to classes."""

from __future__ import annotations

from typing import Any

from al_ray.errors import StrategyError
from al_ray.strategies.base import QueryStrategy
from al_ray.strategies.batch_diverse import (
    BadgeSampling,
    ClusterMarginSampling,
    CoreSetSampling,
    InformationDensitySampling,
    KCenterSampling,
)
from al_ray.strategies.committee import (
    BaldSampling,
    ConsensusEntropySampling,
    MaxDisagreementSampling,
    VariationRatiosSampling,
    VoteEntropySampling,
)
from al_ray.strategies.gradient import ExpectedGradientLengthSampling
from al_ray.strategies.uncertainty import (
    EntropySampling,
    LeastConfidenceSampling,
    MarginSampling,
    RandomSampling,
)

__all__ = ["STRATEGIES", "available_strategies", "make_strategy"]

STRATEGIES: dict[str, type[QueryStrategy]] = {
    cls.name: cls
    for cls in (
        RandomSampling,
        LeastConfidenceSampling,
        MarginSampling,
        EntropySampling,
        VoteEntropySampling,
        VariationRatiosSampling,
        ConsensusEntropySampling,
        MaxDisagreementSampling,
        BaldSampling,
        ExpectedGradientLengthSampling,
        CoreSetSampling,
        BadgeSampling,
        ClusterMarginSampling,
        InformationDensitySampling,
        KCenterSampling,
    )
}


def available_strategies() -> list[str]:
    """Return the strategy names accepted in configs, sorted."""
    return sorted(STRATEGIES)


def make_strategy(name: str, params: dict[str, Any] | None = None) -> QueryStrategy:
    """Build the strategy called ``name`` with ``params`` from the config."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise StrategyError(
            f"unknown strategy {name!r}; choose one of {', '.join(available_strategies())} "
            "(`al-ray strategies` lists what each needs)"
        ) from None
    return cls(**(params or {}))
