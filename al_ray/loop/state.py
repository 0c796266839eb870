"""What a run records about itself so that a resume can check it continues the same run."""

from __future__ import annotations

import hashlib
import json

from al_ray.config import RunConfig

__all__ = ["config_fingerprint", "RESUME_INVARIANT_KEYS"]

# Changing any of these changes which rows are queried, so a resume must keep them.
RESUME_INVARIANT_KEYS = ("seed", "data", "model", "strategy", "loop.batch_size", "monitoring.outliers")


def _invariant_view(config: RunConfig) -> dict:
    raw = config.model_dump(mode="json")
    return {
        "seed": raw["seed"],
        "data": raw["data"],
        "model": raw["model"],
        "strategy": raw["strategy"],
        "loop.batch_size": raw["loop"]["batch_size"],
        # The outlier guard holds rows back from the query.
        "monitoring.outliers": raw["monitoring"]["outliers"],
    }


def config_fingerprint(config: RunConfig) -> str:
    """Return a JSON text of the settings a resumed run must share with the original."""
    return json.dumps(_invariant_view(config), sort_keys=True)


def fingerprint_digest(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:16]


def describe_difference(stored: str, current: str) -> str:
    """Name the settings that differ between two fingerprints."""
    before, after = json.loads(stored), json.loads(current)
    changed = [key for key in after if before.get(key) != after.get(key)]
    return ", ".join(f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in changed)
