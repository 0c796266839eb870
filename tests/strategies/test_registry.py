"""Strategy registry: names, construction and rejected parameters."""

import re

import pytest

from al_ray.errors import AlRayError, StrategyError
from al_ray.strategies import (
    STRATEGIES,
    EntropySampling,
    LeastConfidenceSampling,
    MarginSampling,
    QueryStrategy,
    RandomSampling,
    available_strategies,
    make_strategy,
)

SHIPPED = {
    "random": RandomSampling,
    "least_confidence": LeastConfidenceSampling,
    "margin": MarginSampling,
    "entropy": EntropySampling,
}


def test_registry_ships_four_strategies() -> None:
    for name, cls in SHIPPED.items():
        assert STRATEGIES[name] is cls


def test_registry_keys_are_class_names() -> None:
    for name, cls in STRATEGIES.items():
        assert cls.name == name
        assert issubclass(cls, QueryStrategy)


def test_available_strategies_sorted() -> None:
    names = available_strategies()
    assert names == sorted(STRATEGIES)
    assert set(SHIPPED) <= set(names)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_make_strategy_every_name(name: str) -> None:
    for params in (None, {}):
        strategy = make_strategy(name, params)
        assert type(strategy) is STRATEGIES[name]
        assert strategy.name == name


def test_make_strategy_repr() -> None:
    assert repr(make_strategy("margin")) == "MarginSampling()"


def test_make_strategy_unknown_name() -> None:
    choices = ", ".join(available_strategies())
    expected = (
        f"unknown strategy 'baldd'; choose one of {choices} "
        "(`al-ray strategies` lists what each needs)"
    )
    with pytest.raises(StrategyError, match=re.escape(expected)) as info:
        make_strategy("baldd")
    assert info.value.__suppress_context__


def test_make_strategy_name_case_sensitive() -> None:
    with pytest.raises(StrategyError, match=r"unknown strategy 'Entropy'; choose one of "):
        make_strategy("Entropy")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_make_strategy_rejects_params(name: str) -> None:
    with pytest.raises(
        StrategyError,
        match=re.escape(
            f"strategy '{name}' takes no parameters, got ['batch_size', 'temperature']; "
            "remove strategy.params from the config"
        ),
    ):
        make_strategy(name, {"temperature": 2.0, "batch_size": 8})


def test_strategy_error_hierarchy() -> None:
    # The CLI catches AlRayError, and callers that validate values may catch ValueError.
    with pytest.raises(AlRayError):
        make_strategy("nope")
    with pytest.raises(ValueError):
        make_strategy("nope")


def test_needs_model_only_for_model_inputs():
    assert [name for name in sorted(STRATEGIES) if not make_strategy(name).needs_model] == ["kcenter", "random"]
