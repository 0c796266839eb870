"""The traffic split: exact at weights 0 and 1, stable for sticky keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from al_ray.errors import ConfigError
from al_ray.serving.routing import TrafficSplit, check_weight, key_fraction

# SHA-256("a") = ca978112ca1bbdca fac231b3..., a published test vector.
_SHA256_A_FIRST_64_BITS = 0xCA978112CA1BBDCA

weights = st.floats(min_value=0, max_value=1, allow_nan=False)
keys = st.text(min_size=1, max_size=40)


def test_key_fraction_known_digest():
    assert key_fraction("a") == (_SHA256_A_FIRST_64_BITS >> 11) / 2**53


@given(keys)
def test_key_fraction_in_unit_interval(key):
    assert 0 <= key_fraction(key) < 1


@given(st.integers(min_value=0, max_value=2**63 - 1), st.lists(keys, max_size=30))
def test_weight_zero_never_challenger(seed, request_keys):
    split = TrafficSplit(0.0, sticky=False, seed=seed)
    assert all(split.choose() == "champion" for _ in range(50))
    sticky = TrafficSplit(0.0, sticky=True, seed=seed)
    assert all(sticky.choose(key) == "champion" for key in request_keys)


@given(st.integers(min_value=0, max_value=2**63 - 1), st.lists(keys, max_size=30))
def test_weight_one_always_challenger(seed, request_keys):
    split = TrafficSplit(1.0, sticky=False, seed=seed)
    assert all(split.choose() == "challenger" for _ in range(50))
    sticky = TrafficSplit(1.0, sticky=True, seed=seed)
    assert all(sticky.choose(key) == "challenger" for key in request_keys)


@given(weights, keys)
def test_sticky_key_same_role(weight, key):
    first = TrafficSplit(weight, sticky=True, seed=1)
    second = TrafficSplit(weight, sticky=True, seed=2)
    roles = {first.choose(key) for _ in range(5)} | {second.choose(key)}
    assert len(roles) == 1


@given(weights, weights, keys)
def test_sticky_challenger_keys_kept_when_weight_grows(low, high, key):
    low, high = min(low, high), max(low, high)
    if TrafficSplit(low, sticky=True, seed=0).choose(key) == "challenger":
        assert TrafficSplit(high, sticky=True, seed=0).choose(key) == "challenger"


def test_sticky_without_key_uses_random_draw():
    split = TrafficSplit(0.5, sticky=True, seed=7)
    roles = {split.choose(None) for _ in range(200)}
    assert roles == {"champion", "challenger"}


def test_same_seed_same_sequence():
    first = TrafficSplit(0.3, sticky=False, seed=11)
    second = TrafficSplit(0.3, sticky=False, seed=11)
    assert [first.choose() for _ in range(100)] == [second.choose() for _ in range(100)]


def test_weights_sum_to_one():
    assert TrafficSplit(0.25, sticky=False, seed=0).weights == {"champion": 0.75, "challenger": 0.25}


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_check_weight_rejects(bad):
    with pytest.raises(ConfigError, match=r"the challenger weight must be a number in \[0, 1\], got"):
        check_weight(bad)
