"""Config section for job submission and cluster runs."""

from __future__ import annotations

from al_ray.config_base import Section

__all__ = ["ClusterConfig"]


class ClusterConfig(Section):
    """Settings for job submission and cluster runs."""
