"""Audit entries as al_ray writes them: canary traffic changes, deployments, manual promotes, triggers, answers."""

from __future__ import annotations

from al_ray.monitoring.audit import AuditLog
from al_ray.monitoring.audit_records import annotation_record, trigger_record
from al_ray.monitoring.loop_monitor import LoopMonitor
from al_ray.monitoring.metrics import AlRayMetrics
from al_ray.monitoring.rollout_audit import RolloutAudit
from al_ray.serving.canary import Decision


def decision(action: str, step: int, weight: float, cause: str) -> Decision:
    return Decision(
        action=action,
        step=step,
        challenger_weight=weight,
        reason=f"{action} at step {step}",
        figures={"requests": 150, "checks": [{"guard": "error_rate", "observed": 0.01}]},
        timestamp=1_800_000_000.0 + step,
        cause=cause,
    )


def test_canary_decisions_audited_and_counted(tmp_path):
    metrics = AlRayMetrics()
    log = AuditLog(tmp_path / "audit.db")
    monitor = LoopMonitor(metrics, log, actor="alice")
    record = monitor.canary_recorder("mnist-margin", "4")
    for item in (
        decision("start", 0, 0.05, "start"),
        decision("hold", 0, 0.05, "hold_time"),
        decision("advance", 1, 0.5, "guards_passed"),
        decision("rollback", 1, 0.0, "guard_breach"),
    ):
        record(item)
    monitor.deployed("retire", "mnist-margin", "4", reason="rollback at step 1")
    entries = log.entries()
    monitor.close()

    # The hold moved no traffic, so it is not audited.
    assert [(entry.kind, entry.data["action"]) for entry in entries] == [
        ("traffic", "start"), ("traffic", "advance"), ("traffic", "rollback"), ("deployment", "retire"),
    ]
    assert {entry.subject for entry in entries} == {"mnist-margin/4"}
    assert [entry.actor for entry in entries] == ["canary-controller"] * 3 + ["alice"]
    rollback = entries[2].data
    assert rollback["operator"] == "alice"
    assert rollback["challenger_weight"] == 0.0
    assert rollback["cause"] == "guard_breach"
    assert rollback["figures"]["checks"][0]["observed"] == 0.01
    assert metrics.registry.get_sample_value("al_ray_canary_rollbacks_total") == 1
    assert metrics.registry.get_sample_value("al_ray_canary_promotions_total") == 0


def test_manual_promote_audited(tmp_path):
    with AuditLog(tmp_path / "audit.jsonl") as log:
        audit = RolloutAudit(log, "mnist-margin", actor="bob")
        response = {"champion": {"version": "5", "weight": 1.0}, "challenger": {"version": "4", "weight": 0.0}}
        audit.manual("promote", response)
        audit.manual("rollback", response)
        entries = log.entries(kind="traffic")
    assert [(entry.subject, entry.data["action"], entry.actor) for entry in entries] == [
        ("mnist-margin/5", "promote", "bob"),
        ("mnist-margin/4", "rollback", "bob"),
    ]
    assert entries[0].data["reason"] == "manual promote by bob with `al-ray serve promote`"


def test_disabled_audit_writes_nothing(tmp_path):
    audit = RolloutAudit(None, "mnist-margin", actor="bob")
    audit.served("serve_champion", "1", "first")
    audit.manual("promote", {})
    audit.decision_recorder("2")(decision("start", 0, 0.05, "start"))
    assert list(tmp_path.iterdir()) == []


def test_trigger_record_once_per_key(tmp_path):
    with AuditLog(tmp_path / "audit.db") as log:
        record = trigger_record(
            "drift", start=True, reason="drift share 0.5 >= 0.3", figures={"drift_share": 0.5},
            subject="rows 5000-5999", key="trigger:drift:rows 5000-5999",
        )
        assert len(log.append_many([record])) == 1
        assert log.append_many([record]) == []
        (entry,) = log.entries(kind="trigger")
    assert entry.actor == "drift"
    assert entry.data == {
        "policy": "drift", "decision": "start", "reason": "drift share 0.5 >= 0.3", "figures": {"drift_share": 0.5},
    }


def test_annotation_record_once_per_item_and_annotator(tmp_path):
    answer = {"item_id": 12, "row_id": 4051, "annotator": "alice", "label": "7", "item_kind": "task", "round_index": 2}
    with AuditLog(tmp_path / "audit.db") as log:
        assert len(log.append_many([annotation_record(**answer, answered_at=1_800_000_000.0)])) == 1
        # A replayed submission of the same item by the same annotator is not logged again.
        assert log.append_many([annotation_record(**answer, answered_at=1_800_000_005.0)]) == []
        (entry,) = log.entries(kind="label", subject=4051)
    assert entry.actor == "alice"
    assert entry.data["answered_at"] == "2027-01-15T08:00:00.000000+00:00"
    assert entry.data["item_kind"] == "task"
    assert entry.data["source"] == "labeling-service"
