"""Settings of the router deployment, built from the serving section of the config."""

from __future__ import annotations

from dataclasses import dataclass

from al_ray.config import ServingConfig

__all__ = ["RouterSettings"]


@dataclass(frozen=True)
class RouterSettings:
    """What the router replica is constructed with.

    Attributes
    ----------
    champion_app
        Serve application of the champion's ``ModelVersion`` deployment.
    challenger_app
        Serve application of a challenger to attach once the champion is
        connected, at ``challenger_weight``; None to start without one. A
        config-file deploy names it here, because no caller is there to
        attach it through the router's handle.
    challenger_weight
        Share of traffic, in [0, 1], that the configured challenger gets.
    sticky, shadow, max_rows, max_body_bytes
        As in :class:`~al_ray.config.ServingConfig`.
    feedback_path
        SQLite file for uncertain rows, or None to keep none.
    uncertainty_threshold
        Rows whose margin uncertainty is at least this go to ``feedback_path``.
    seed
        Seed of the random traffic split.
    agreement_every
        Every n-th request the challenger serves is also scored by the
        champion, off the response path, to count agreement.
    call_timeout_s
        Seconds the router waits for one version's response.
    feedback_capacity
        Recent request ids kept for ``POST /feedback``; older ones are forgotten.
    max_background_calls
        Shadow, agreement and feedback-store tasks allowed to be pending at
        once; beyond it new ones are skipped and counted.
    """

    champion_app: str
    challenger_app: str | None = None
    challenger_weight: float = 0.0
    sticky: bool = False
    shadow: bool = False
    max_rows: int = 1024
    max_body_bytes: int = 4_000_000
    feedback_path: str | None = None
    uncertainty_threshold: float = 0.5
    seed: int = 0
    agreement_every: int = 5
    call_timeout_s: float = 30.0
    feedback_capacity: int = 10_000
    max_background_calls: int = 256

    @classmethod
    def from_config(cls, config: ServingConfig, champion_app: str, *, seed: int) -> RouterSettings:
        """Build the settings of a router in front of ``champion_app``."""
        return cls(
            champion_app=champion_app,
            sticky=config.sticky,
            shadow=config.shadow,
            max_rows=config.max_rows,
            max_body_bytes=config.max_body_bytes,
            feedback_path=config.feedback.path,
            uncertainty_threshold=config.feedback.uncertainty_threshold,
            seed=seed,
        )
