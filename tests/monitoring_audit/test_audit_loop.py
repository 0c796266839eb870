"""A real two-round run with auditing and a metrics textfile: every label and version logged, series by hand."""

from __future__ import annotations

import csv

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from al_ray.config import load_config
from al_ray.loop import ActiveLearningLoop
from al_ray.monitoring.audit import AuditLog


def samples(path) -> dict[tuple[str, tuple], float]:
    values = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


@pytest.mark.slow
def test_run_audits_labels_and_versions(tmp_path):
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "name": "mnist_audit",
                "seed": 3,
                "data": {"dataset": "mnist_test", "initial_labeled": 20, "test_size": 1000, "pool_size": 3000},
                "model": {"estimator": "logistic_regression", "params": {"max_iter": 200}, "fit_on": "driver"},
                "strategy": {"name": "margin"},
                "loop": {"rounds": 2, "batch_size": 20},
                "scoring": {"mode": "local"},
                "tracking": {"enabled": True, "log_model": False},
                "labeling": {"cost_per_label": 0.25},
                "monitoring": {
                    "audit": {"enabled": True, "actor": "ci-bot"},
                    "metrics": {"textfile": str(tmp_path / "metrics" / "al_ray.prom")},
                },
            }
        )
    )
    output = tmp_path / "run"
    result = ActiveLearningLoop(load_config(config_path), output_dir=output).run()
    assert result.status == "completed"

    with AuditLog(output / "audit.db") as log:
        assert log.verify() == []
        labels = log.entries(kind="label")
        versions = log.entries(kind="model_version")
    # 20 initial rows plus 20 per round, each answered once by the oracle.
    assert len(labels) == 60
    assert {entry.actor for entry in labels} == {"oracle"}
    assert len({entry.subject for entry in labels}) == 60
    assert sorted({entry.data["round"] for entry in labels}) == [0, 1, 2]
    round_two = [entry for entry in labels if entry.data["round"] == 2]
    assert {entry.data["model_version"] for entry in round_two} == {"models:/mnist_audit-margin/2"}

    assert [entry.subject for entry in versions] == [f"mnist_audit-margin/{v}" for v in (1, 2, 3)]
    assert [entry.actor for entry in versions] == ["ci-bot"] * 3
    assert [entry.data["lineage"]["parent_version"] for entry in versions] == ["", "1", "2"]
    assert [entry.data["lineage"]["n_labeled"] for entry in versions] == ["20", "40", "60"]
    # Each version's entry follows the labels it was trained on.
    assert versions[0].seq == 21
    assert versions[1].seq == 42

    with open(output / "learning_curve.csv", newline="") as file:
        accuracy = [float(row["accuracy"]) for row in csv.DictReader(file)]
    values = samples(tmp_path / "metrics" / "al_ray.prom")
    assert values[("al_ray_rounds_total", ())] == 3
    assert values[("al_ray_round_index", ())] == 2
    assert values[("al_ray_labeled_rows", ())] == 60
    assert values[("al_ray_round_labels", ())] == 20
    assert values[("al_ray_labels_total", (("annotator", "oracle"),))] == 60
    assert values[("al_ray_labeling_cost_total", (("annotator", "oracle"),))] == pytest.approx(15.0)
    assert values[("al_ray_label_tasks_pending", ())] == 0
    assert values[("al_ray_round_accuracy", ())] == pytest.approx(accuracy[2], abs=1e-6)
    assert values[("al_ray_round_accuracy_gain", ())] == pytest.approx(accuracy[2] - accuracy[1], abs=1e-6)
    counts = {stage: values[("al_ray_round_stage_seconds_count", (("stage", stage),))]
              for stage in ("scoring", "labeling_wait", "training")}
    assert counts == {"scoring": 2, "labeling_wait": 3, "training": 3}
    assert ("al_ray_drift_score", ()) not in values
