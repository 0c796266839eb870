"""The base of every config section, kept apart so that each package can define its own section.

Sections reject unknown keys and are frozen once validated. A package such as
``al_ray.labeling`` defines its section on this base in its own ``config.py``,
and :mod:`al_ray.config` collects the sections into the run config. This
module imports nothing from al_ray, so it never causes an import cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]


class Section(BaseModel):
    """A config section: unknown keys fail, values cannot change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
