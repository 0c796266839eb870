"""`al-ray watch` on the elec2 stream replayed as live traffic, and the elec2 watch benchmark at smoke size."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from al_ray.cli import main as al_ray_main
from al_ray.labels import LabelStore
from al_ray.monitoring.audit import AuditLog

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def elec2_config(tmp_path: Path) -> Path:
    # Windows of two days (96 half-hourly rows); from round 0's first two days,
    # NSW price and demand move enough that the drift policy fires early.
    raw = {
        "name": "elec2-watch-test",
        "output": str(tmp_path / "run"),
        "data": {"dataset": "elec2", "test_size": 0.1},
        "model": {"estimator": "logistic_regression", "fit_on": "driver", "standardize": True},
        "loop": {"batch_size": 20},
        "scoring": {"mode": "local"},
        "tracking": {"enabled": True, "register_models": False, "log_model": False},
        "monitoring": {
            "drift": {"exclude_features": ["date"], "window": {"size": 96}},
            "triggers": {"drift": {"min_drifted_share": 0.25}},
            "watch": {"source": {"kind": "replay", "seconds_per_row": 1800}, "reports": "drifted"},
            "audit": {"enabled": True},
        },
    }
    path = tmp_path / "elec2_watch.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_watch_elec2_replay_starts_rounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = al_ray_main(["watch", str(elec2_config(tmp_path)), "--max-windows", "3"])

    printed = capsys.readouterr().out
    assert status == 0
    assert "windows: 3 (3 checked, 0 empty, 0 malformed)" in printed
    with LabelStore(tmp_path / "run" / "labels.db") as store:
        completed = [row["round_index"] for row in store.round_records() if row["status"] == "completed"]
    assert completed[0] == 0
    assert len(completed) >= 2
    assert (tmp_path / "run" / "models" / f"round_{completed[-1]:04d}.pkl").is_file()
    assert list((tmp_path / "run" / "watch" / "reports").glob("*.html"))
    assert (tmp_path / "run" / "mlflow.db").is_file()
    with AuditLog(tmp_path / "run" / "audit.db") as log:
        assert log.verify() == []
        decisions = log.entries(kind="trigger", actor="drift")
    assert len(decisions) == 3
    assert any(entry.data["decision"] == "start" for entry in decisions)


def test_watch_requires_a_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = elec2_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["monitoring"]["triggers"] = {}
    path.write_text(yaml.safe_dump(raw))

    status = al_ray_main(["watch", str(path), "--once"])

    assert status == 2
    assert "no trigger policy is set" in capsys.readouterr().err


def test_elec2_watch_benchmark_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.elec2_watch import SHIFT_COLUMNS, WINDOW_COLUMNS, main

    out = tmp_path / "elec2_watch.csv"

    status = main(["--smoke", "--variants", "recent", "--work", str(tmp_path / "work"), "--out", str(out)])

    assert status == 0
    with open(out, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == WINDOW_COLUMNS
    assert [(row["replay"], row["first_row"], row["end_row"]) for row in rows] == [
        ("file", "96", "192"), ("file", "192", "288"), ("file", "288", "384"),
        ("shuffled", "96", "192"), ("shuffled", "192", "288"), ("shuffled", "288", "384"),
    ]  # fmt: skip
    with open(tmp_path / "elec2_watch_shifts.csv", newline="") as stream:
        assert tuple(next(csv.reader(stream))) == SHIFT_COLUMNS
    assert "| file order | 3 |" in capsys.readouterr().out
