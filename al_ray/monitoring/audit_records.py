"""The audit entries that al_ray writes, built in one place so that every writer words them alike.

Writers: the loop (labels, model versions, rollouts), ``al-ray serve`` (rollouts,
manual promote and rollback), the labeling service (labels) and the watcher
(trigger decisions). :func:`open_audit_log` finds a run's log from its config.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from al_ray.monitoring.audit import (
    DEPLOYMENT,
    LABEL,
    MODEL_VERSION,
    TRAFFIC,
    TRIGGER,
    AuditLog,
    AuditRecord,
)

__all__ = [
    "annotation_record",
    "audit_location",
    "deployment_record",
    "label_key",
    "label_records",
    "model_version_record",
    "open_audit_log",
    "traffic_record",
    "trigger_record",
]

logger = logging.getLogger(__name__)

# Canary decisions that change traffic weights; a hold changes nothing.
_TRAFFIC_ACTIONS = ("start", "advance", "promote", "rollback")


def audit_location(config, output_dir: str | Path) -> str:
    """Return ``monitoring.audit.path``, or ``OUTPUT/audit.db`` of the run in ``output_dir``."""
    path = config.monitoring.audit.path
    return path if path is not None else str(Path(output_dir) / "audit.db")


def open_audit_log(config, output_dir: str | Path) -> AuditLog | None:
    """Open the run's audit log when ``monitoring.audit.enabled``, else return None."""
    if not config.monitoring.audit.enabled:
        return None
    log = AuditLog(audit_location(config, output_dir))
    logger.info("writing audit entries to %s", log.location)
    return log


def label_key(row_id: int, annotator: str, label: str) -> str:
    """Return the key of a label entry: one entry per stored ``(row_id, annotator, label)``, as the label store keeps."""
    return f"label:{row_id}:{annotator}:{label}"


def _iso(unix_time: float) -> str:
    return dt.datetime.fromtimestamp(unix_time, dt.UTC).isoformat(timespec="microseconds")


def label_records(answers: Iterable, *, tasks: Iterable = (), source: str) -> list[AuditRecord]:
    """Build one ``label`` entry per answer: who labeled which row, with what, when, for which task.

    ``answers`` are :class:`al_ray.labels.Answer`; ``tasks`` are the
    :class:`al_ray.labels.Task` they answer, for the round and the model
    version that queried each row; ``source`` names the writer (``loop`` or
    ``labeling-service``).
    """
    task_of = {task.row_id: task for task in tasks}
    records = []
    for answer in answers:
        task = task_of.get(answer.row_id)
        data: dict[str, Any] = {
            "row_id": answer.row_id,
            "label": answer.label,
            "annotator": answer.annotator,
            "answered_at": _iso(answer.answered_at),
            "source": source,
        }
        if task is not None:
            data["round"] = task.round_index
            data["model_version"] = task.model_version
        records.append(
            AuditRecord(
                LABEL,
                actor=answer.annotator,
                subject=str(answer.row_id),
                data=data,
                key=label_key(answer.row_id, answer.annotator, answer.label),
            )
        )
    return records


def annotation_record(
    *,
    item_id: int,
    row_id: int,
    annotator: str,
    label: str,
    answered_at: float,
    item_kind: str,
    round_index: int | None = None,
) -> AuditRecord:
    """Build the ``label`` entry of one person's answer on the labeling page, before answers are aggregated.

    ``item_kind`` is ``task``, or ``gold`` for a row whose label is known. The
    key is the item and the annotator, so a replayed submission is logged once.
    """
    return AuditRecord(
        LABEL,
        actor=annotator,
        subject=str(row_id),
        data={
            "row_id": row_id,
            "label": label,
            "annotator": annotator,
            "answered_at": _iso(answered_at),
            "item_id": item_id,
            "item_kind": item_kind,
            "round": round_index,
            "source": "labeling-service",
        },
        key=f"annotation:{item_id}:{annotator}",
    )


def model_version_record(
    name: str,
    version: str,
    *,
    actor: str,
    round_index: int,
    lineage: Mapping[str, Any],
    metrics: Mapping[str, float],
    run_id: str | None,
) -> AuditRecord:
    """Build the ``model_version`` entry of a registered version, with its lineage and test figures."""
    return AuditRecord(
        MODEL_VERSION,
        actor=actor,
        subject=f"{name}/{version}",
        data={
            "name": name,
            "version": version,
            "round": round_index,
            "lineage": dict(lineage),
            "metrics": {key: metrics[key] for key in ("accuracy", "macro_f1", "n_labeled") if key in metrics},
            "mlflow_run_id": run_id,
        },
        key=f"model_version:{name}/{version}",
    )


def deployment_record(
    action: str, name: str, version: str, *, actor: str, reason: str, data: Mapping[str, Any] | None = None
) -> AuditRecord:
    """Build a ``deployment`` entry: a version served, retired, or given the champion alias.

    ``action`` is a short verb such as ``serve_champion``, ``serve_challenger``,
    ``retire`` or ``set_champion_alias``, and ``reason`` states why in one sentence.
    """
    return AuditRecord(
        DEPLOYMENT,
        actor=actor,
        subject=f"{name}/{version}",
        data={"action": action, "name": name, "version": version, "reason": reason, **dict(data or {})},
    )


def traffic_record(decision, *, name: str, version: str, actor: str, operator: str) -> AuditRecord | None:
    """Build the ``traffic`` entry of a canary decision, or return None for a hold, which moves no traffic.

    ``decision`` is a :class:`al_ray.serving.canary.Decision`. ``actor`` is
    the policy that decided: the canary controller, or ``operator`` for a
    manual promote or rollback. ``operator`` is the OS user who ran the rollout.
    """
    if decision.action not in _TRAFFIC_ACTIONS:
        return None
    return AuditRecord(
        TRAFFIC,
        actor=actor,
        subject=f"{name}/{version}",
        data={"name": name, "version": version, "operator": operator, **decision.to_dict()},
    )


def trigger_record(
    policy: str,
    *,
    start: bool,
    reason: str,
    figures: Mapping[str, Any],
    subject: str,
    key: str | None = None,
) -> AuditRecord:
    """Build a ``trigger`` entry: whether ``policy`` started a round, why, and the figures behind it.

    ``subject`` names what was judged, e.g. the live window ``rows 5000-5999``;
    ``key``, when given, makes the entry once-only (one entry per trigger).
    """
    return AuditRecord(
        TRIGGER,
        actor=policy,
        subject=subject,
        data={"policy": policy, "decision": "start" if start else "skip", "reason": reason, "figures": dict(figures)},
        key=key,
    )
