"""Audit entries of serving: versions put into and out of service, and every traffic change.

The loop's per-round rollouts and ``al-ray serve deploy|promote|rollback``
both write through :class:`RolloutAudit`. With auditing off it writes nothing,
so callers use it unconditionally.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from al_ray.monitoring.audit import TRAFFIC, AuditLog, AuditRecord, default_actor
from al_ray.monitoring.audit_records import (
    deployment_record,
    open_audit_log,
    traffic_record,
)

__all__ = ["CANARY_POLICY", "RolloutAudit"]

CANARY_POLICY = "canary-controller"
"""The actor of traffic entries that the canary rollout decided."""


class RolloutAudit:
    """Audit the deployments and traffic changes of one registered model.

    Parameters
    ----------
    log
        The audit log, or None to write nothing.
    name
        The registered model name; entries name ``<name>/<version>``.
    actor
        The OS user (or the configured actor) who runs the rollout.
    """

    def __init__(self, log: AuditLog | None, name: str, *, actor: str | None = None) -> None:
        self.log = log
        self.name = name
        self.actor = actor or default_actor()

    @classmethod
    def open(cls, config, output_dir: str | Path, name: str) -> RolloutAudit:
        """Open the run's audit log if ``monitoring.audit.enabled``; close it with :meth:`close`."""
        return cls(open_audit_log(config, output_dir), name, actor=config.monitoring.audit.actor)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def served(self, action: str, version: str, reason: str, data: Mapping[str, Any] | None = None) -> None:
        """Audit a version served, retired or given the champion alias (see :func:`deployment_record`)."""
        if self.log is not None:
            self.log.append_many(
                [deployment_record(action, self.name, version, actor=self.actor, reason=reason, data=data)]
            )

    def decision_recorder(self, version: str, then: Callable[[Any], object] | None = None) -> Callable[[Any], None]:
        """Return an ``on_decision`` callback for ``run_rollout`` that audits each traffic change, then calls ``then``."""

        def record(decision) -> None:
            if self.log is not None:
                entry = traffic_record(
                    decision, name=self.name, version=version, actor=CANARY_POLICY, operator=self.actor
                )
                if entry is not None:
                    self.log.append_many([entry])
            if then is not None:
                then(decision)

        return record

    def manual(self, action: str, response: Mapping[str, Any]) -> None:
        """Audit a promote or rollback that a person sent to the router, with the router's response.

        ``response`` is the router's ``/versions`` view after the change. The
        subject is the version the action was about, which is the new champion
        after a promote and the challenger after a rollback.
        """
        if self.log is None:
            return
        role = "champion" if action == "promote" else "challenger"
        version = str((response.get(role) or {}).get("version", "unknown"))
        self.log.append_many([
            AuditRecord(
                TRAFFIC,
                actor=self.actor,
                subject=f"{self.name}/{version}",
                data={
                    "name": self.name, "version": version, "action": action, "operator": self.actor,
                    "reason": f"manual {action} by {self.actor} with `al-ray serve {action}`",
                    "versions": dict(response),
                },
            )
        ])
