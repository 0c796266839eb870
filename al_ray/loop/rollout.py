"""Deploying each round's model version: the champion first, then each new version as a canary.

With ``serving.deploy_each_round``, the loop serves round 0's version as the
champion on Ray Serve. Each later round deploys its version as the
challenger at weight 0 and runs the canary rollout on the traffic that
clients send meanwhile. A promoted challenger becomes the champion, in the
router and in the registry's ``champion`` alias, and the former champion is
retired. A rolled-back challenger is removed, and the champion keeps serving.
Serving stops when the run ends, because the run's Ray session does.
"""

from __future__ import annotations

import logging
from pathlib import Path

from al_ray.config import RunConfig

__all__ = ["RoundDeployer"]

logger = logging.getLogger(__name__)


class RoundDeployer:
    """Serve a run's registered versions as they are made, one rollout per round.

    Parameters
    ----------
    config : RunConfig
        Its ``serving`` section sets the address, rollout plan and guards.
    registry : ModelRegistry
        Where the versions are registered, and whose ``champion`` alias moves on promotion.
    name : str
        The registered model name.
    decision_log : path
        JSON lines of every rollout decision.
    monitor : LoopMonitor, optional
        Audits every deployment and traffic change, and counts rollout outcomes.
    """

    def __init__(self, config: RunConfig, registry, name: str, decision_log: Path, *, monitor=None) -> None:
        self.config = config
        self.registry = registry
        self.name = name
        self.decision_log = decision_log
        self.monitor = monitor
        self._client = None
        self._champion: str | None = None

    def deploy_round(self, round_index: int, version: str) -> dict[str, float]:
        """Serve ``version``: as the champion when nothing is served yet, else through a rollout.

        Returns the round's rollout metrics: ``rollout_promoted`` (1 or 0) and
        ``rollout_seconds``; empty for the first deployment.
        """
        from al_ray.seeding import derive_seed
        from al_ray.serving.canary import CanaryController, run_rollout
        from al_ray.serving.deploy import deploy, remove_challenger, replace_challenger

        serving = self.config.serving
        spec = self._spec(version)
        if self._client is None:
            # A resumed run serves the registry's champion again before rolling
            # out the new version; a new run serves its first version.
            champion = self._registered_champion() if round_index > 0 else None
            self._client = deploy(
                serving, self._spec(champion) if champion else spec, seed=derive_seed(self.config.seed, "serving")
            )
            logger.info(
                "round %d: serving version %s as the champion at %s",
                round_index, champion or version, self._client.base_url,
            )
            self._champion = champion or version
            self._audit("serve_champion", self._champion, f"round {round_index}: nothing was served yet")
            if champion is None or champion == version:
                return {}
        replace_challenger(serving, spec, weight=0.0)
        self._audit("serve_challenger", version, f"round {round_index}: new version, at weight 0 until the rollout")
        controller = CanaryController(serving.rollout, serving.guards)
        decision = run_rollout(
            self._client,
            controller,
            decision_log=self.decision_log,
            max_duration_s=serving.rollout.max_duration_s,
            on_decision=self.monitor.canary_recorder(self.name, version) if self.monitor is not None else None,
        )
        promoted = decision.action == "promote"
        retired = version
        if promoted:
            self.registry.set_alias(self.name, "champion", version)
            self._audit("set_champion_alias", version, f"the rollout promoted it: {decision.reason}")
            retired, self._champion = self._champion, version
        # After a promotion the challenger slot contains the former champion, and
        # after a rollback the rejected version. Either one is retired.
        remove_challenger()
        if retired is not None:
            self._audit("retire", retired, "replaced by the promoted version" if promoted else decision.reason)
        logger.info("round %d: version %s %s: %s", round_index, version,
                    "promoted" if promoted else "rolled back", decision.reason)
        return {"rollout_promoted": 1.0 if promoted else 0.0, "rollout_seconds": controller.elapsed_s}

    def _audit(self, action: str, version: str, reason: str) -> None:
        if self.monitor is not None:
            self.monitor.deployed(action, self.name, version, reason=reason)

    def _spec(self, version: str):
        from al_ray.serving.spec import VersionSpec

        return VersionSpec(label=version, tracking_uri=self.registry.tracking_uri, name=self.name, version=version)

    def _registered_champion(self) -> str | None:
        from al_ray.errors import AlRayError

        try:
            return str(self.registry.describe(self.name, "champion").version)
        except AlRayError:
            return None

    def close(self) -> None:
        """Stop serving."""
        if self._client is not None:
            from al_ray.serving.deploy import shutdown

            shutdown()
            self._client = None
