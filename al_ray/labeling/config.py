"""Config section for human labeling (labels.source: human)."""

from __future__ import annotations

from al_ray.config_base import Section

__all__ = ["LabelingConfig"]


class LabelingConfig(Section):
    """Settings for human labeling (labels.source: human)."""
