"""The outcome of scoring the pool once."""

from __future__ import annotations

from dataclasses import dataclass

from al_ray.strategies.selection import Selection

__all__ = ["ScoringResult"]


@dataclass(frozen=True)
class ScoringResult:
    """The selected rows and what it took to find them."""

    selection: Selection
    rows_scored: int
    path: str
    """``"local"`` (in-process) or ``"ray"`` (Ray Data actor pool)."""

    seconds: float = 0.0
    strategy: str = ""
    """Name of the strategy that selected the rows."""

    @property
    def rows_per_s(self) -> float:
        return self.rows_scored / self.seconds if self.seconds > 0 else 0.0
