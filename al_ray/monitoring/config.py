"""Config section for drift, triggers, metrics and the audit log."""

from __future__ import annotations

from al_ray.config_base import Section

__all__ = ["MonitoringConfig"]


class MonitoringConfig(Section):
    """Settings for drift, triggers, metrics and the audit log."""
