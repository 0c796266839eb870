"""Command-line commands of al_ray.monitoring."""

from __future__ import annotations

__all__ = ["add_parsers"]


def add_parsers(commands) -> None:
    """Add this package's commands to the `al-ray` parser; each sets `handler` with set_defaults."""
