"""Seeds derived from a run's one root seed.

Every random choice in al_ray takes a seed from :func:`derive_seed`, so two runs
with the same root seed make the same choices in the same rounds, and a resumed
run makes the choices the killed run would have made. Streams are separated by
a purpose name and a round number through ``numpy.random.SeedSequence``'s spawn
key, which gives independent streams without any state to store.
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["derive_seed", "spawn_seeds"]


def _purpose_key(purpose: str) -> int:
    # crc32 is stable across processes and Python versions, unlike hash().
    return zlib.crc32(purpose.encode("utf-8"))


def derive_seed(root_seed: int, purpose: str, round_index: int = 0) -> int:
    """Return a 63-bit seed for one purpose in one round, derived from ``root_seed``."""
    sequence = np.random.SeedSequence(
        entropy=int(root_seed), spawn_key=(_purpose_key(purpose), int(round_index))
    )
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def spawn_seeds(root_seed: int, purpose: str, count: int, round_index: int = 0) -> list[int]:
    """Return ``count`` independent child seeds, for actors or committee members."""
    parent = np.random.SeedSequence(
        entropy=int(root_seed), spawn_key=(_purpose_key(purpose), int(round_index))
    )
    return [int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for child in parent.spawn(count)]
