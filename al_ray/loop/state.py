"""What a run records about itself so that a resume can check it continues the same run."""

from __future__ import annotations

import hashlib
import json

from al_ray.config import RunConfig

__all__ = ["config_fingerprint", "RESUME_INVARIANT_KEYS"]

# Changing any of these changes which rows are queried, or which answers
# become labels, so a resume must keep them.
RESUME_INVARIANT_KEYS = (
    "seed", "data", "model", "strategy", "loop.batch_size", "monitoring.outliers", "labeling.aggregation"
)

# The labeling settings that decide which label people's answers resolve to.
# gold_rate is not among them: gold answers never reach training.
_AGGREGATION_FIELDS = ("answers_per_task", "aggregation", "tie_rule", "min_answers_per_annotator")


def _invariant_view(config: RunConfig) -> dict:
    raw = config.model_dump(mode="json")
    view = {
        "seed": raw["seed"],
        "data": raw["data"],
        "model": raw["model"],
        "strategy": raw["strategy"],
        "loop.batch_size": raw["loop"]["batch_size"],
        # The outlier guard holds rows back from the query.
        "monitoring.outliers": raw["monitoring"]["outliers"],
    }
    aggregation = _aggregation_view(config)
    if aggregation is not None:
        view["labeling.aggregation"] = aggregation
    return view


def _aggregation_view(config: RunConfig) -> dict | None:
    """Return the settings that turn people's answers into labels, or None when they are the defaults.

    Only a run with ``labels.source: human`` has them. Left out while they
    have their defaults, so that a run stored before they were part of the
    fingerprint still resumes.
    """
    if config.labels.source != "human":
        return None
    labeling = config.labeling
    view = {name: getattr(labeling, name) for name in _AGGREGATION_FIELDS}
    view["max_answers_per_task"] = labeling.max_answers
    defaults = type(labeling)()
    default_view = {name: getattr(defaults, name) for name in _AGGREGATION_FIELDS}
    default_view["max_answers_per_task"] = defaults.max_answers
    return None if view == default_view else view


def config_fingerprint(config: RunConfig) -> str:
    """Return a JSON text of the settings a resumed run must share with the original."""
    return json.dumps(_invariant_view(config), sort_keys=True)


def fingerprint_digest(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:16]


def describe_difference(stored: str, current: str) -> str:
    """Name the settings that differ between two fingerprints."""
    before, after = json.loads(stored), json.loads(current)
    keys = list(after) + [key for key in before if key not in after]
    changed = [key for key in keys if before.get(key) != after.get(key)]
    return ", ".join(f"{key}: {_shown(before, key)} -> {_shown(after, key)}" for key in changed)


def _shown(view: dict, key: str) -> str:
    # A key left out of a fingerprint has its default values (see _aggregation_view).
    return repr(view[key]) if key in view else "defaults"
