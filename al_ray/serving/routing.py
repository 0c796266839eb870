"""The weighted split between champion and challenger.

Each request draws a number ``u`` in ``[0, 1)`` and goes to the challenger
when ``u < challenger_weight``. With weight 0 no request reaches the
challenger and with weight 1 every request does, exactly. A sticky split
takes ``u`` from a hash of the request's key instead of the random stream,
so the same key reaches the same version while the weights stay fixed. When
the challenger's weight grows, keys that already reached it keep reaching it.
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal

import numpy as np

from al_ray.errors import ConfigError

__all__ = ["ROLES", "Role", "TrafficSplit", "check_weight", "key_fraction"]

Role = Literal["champion", "challenger"]
ROLES: tuple[Role, Role] = ("champion", "challenger")

# 53 bits fill a float64 mantissa, so the quotient below is exact and stays below 1.
_FRACTION_BITS = 53


def key_fraction(key: str) -> float:
    """Map ``key`` to a number in ``[0, 1)`` that is the same in every process.

    Uses the first 53 bits of the key's SHA-256 digest, because Python's own
    ``hash`` of a string changes between processes.
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    bits = int.from_bytes(digest[:8], "big") >> (64 - _FRACTION_BITS)
    return bits / float(1 << _FRACTION_BITS)


def check_weight(weight: object) -> float:
    """Return ``weight`` as a float, or raise ConfigError if it is not a number in [0, 1]."""
    valid = (
        isinstance(weight, (int, float))
        and not isinstance(weight, bool)
        and math.isfinite(weight)
        and 0 <= weight <= 1
    )
    if not valid:
        raise ConfigError(f"the challenger weight must be a number in [0, 1], got {weight!r}")
    return float(weight)


class TrafficSplit:
    """Chooses the role that serves each request.

    Parameters
    ----------
    challenger_weight
        Share of requests the challenger serves, in ``[0, 1]``.
    sticky
        Route a request that carries a key by the key's hash.
    seed
        Seed of the random stream for requests routed at random.
    """

    def __init__(self, challenger_weight: float, *, sticky: bool, seed: int) -> None:
        self.challenger_weight = check_weight(challenger_weight)
        self.sticky = sticky
        self._rng = np.random.default_rng(seed)

    @property
    def weights(self) -> dict[str, float]:
        """Share of traffic per role; the two shares sum to 1."""
        return {"champion": 1.0 - self.challenger_weight, "challenger": self.challenger_weight}

    def choose(self, key: str | None = None) -> Role:
        """Return the role that serves a request with ``key`` (None: no key)."""
        if self.sticky and key is not None:
            draw = key_fraction(key)
        else:
            draw = float(self._rng.random())
        return "challenger" if draw < self.challenger_weight else "champion"
