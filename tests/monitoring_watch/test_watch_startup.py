"""The watcher's start: preconditions, the state file's source, metrics and checks before the first window.

A small CSV stream (windows of 100 rows, one row per second of replay time)
is replayed; its first window trains round 0. Rounds run the real loop in
this process with scikit-learn and the simulated oracle, without tracking.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from al_ray.cli import main as al_ray_main
from al_ray.config import parse_config
from al_ray.errors import ConfigError
from al_ray.labels import LabelStore
from al_ray.monitoring.watch import Watcher

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WINDOW = 100


def write_stream(path: Path, n_windows: int, *, constant_f1: bool = False) -> Path:
    """Write ``n_windows`` windows of 100 rows: label ``b`` when f0 > 0, else ``a``; f1 is noise or constant 0.5."""
    rng = np.random.default_rng(0)
    n_rows = n_windows * WINDOW
    f0 = rng.normal(0, 1, n_rows)
    f1 = np.full(n_rows, 0.5) if constant_f1 else rng.normal(0, 1, n_rows)
    table = pd.DataFrame({"row_id": np.arange(n_rows), "f0": f0, "f1": f1, "label": np.where(f0 > 0, "b", "a")})
    table.to_csv(path, index=False)
    return path


def raw_config(tmp_path: Path, *, n_windows: int = 4, constant_f1: bool = False, **monitoring) -> dict:
    """Return a config whose staleness policy fires on every window after round 0 (max age 1 s)."""
    stream = write_stream(tmp_path / "stream.csv", n_windows, constant_f1=constant_f1)
    sections = {
        "drift": {"window": {"size": WINDOW}, "min_window_rows": 20},
        "triggers": {"staleness": {"max_age_s": 1.0}},
        "watch": {"source": {"kind": "replay", "seconds_per_row": 1.0}, "reports": "none"},
    }
    sections.update(monitoring)
    return {
        "name": "watch-start",
        "seed": 0,
        "output": str(tmp_path / "run"),
        "data": {"path": str(stream), "label_column": "label", "row_id_column": "row_id", "test_size": 0.1},
        "model": {"estimator": "logistic_regression", "fit_on": "driver"},
        "loop": {"batch_size": 10},
        "scoring": {"mode": "local"},
        "tracking": {"enabled": False},
        "monitoring": sections,
    }


def write_yaml(tmp_path: Path, raw: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


@contextlib.contextmanager
def captured(name: str, level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
    """Collect the records of logger ``name`` at ``level`` and above, whatever the CLI set up."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_failed_watch_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = raw_config(
        tmp_path,
        watch={"source": {"kind": "feedback", "path": str(tmp_path / "served.db")}},
        metrics={"enabled": True, "port": 0},
        audit={"enabled": True},
    )
    raw["tracking"] = {"enabled": True}

    status = al_ray_main(["watch", str(write_yaml(tmp_path, raw)), "--once"])

    assert status == 2
    assert "no run to watch" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "served.db").exists()


def test_state_file_of_other_source_rejected(tmp_path: Path) -> None:
    raw = raw_config(tmp_path)
    with Watcher(parse_config(raw)) as watcher:
        watcher.run(max_windows=1)
    served = tmp_path / "served.db"
    raw["monitoring"]["watch"]["source"] = {"kind": "feedback", "path": str(served)}
    state_path = tmp_path / "run" / "watch.db"

    with pytest.raises(ConfigError, match="belongs to another live source") as raised:
        Watcher(parse_config(raw))

    assert str(state_path) in str(raised.value)
    assert "monitoring.watch.state_path" in str(raised.value)
    assert not served.exists()
    raw["monitoring"]["watch"]["state_path"] = str(tmp_path / "feedback-watch.db")
    with Watcher(parse_config(raw)) as watcher:
        summary = watcher.run(once=True)
    assert summary.windows == 0


def test_restart_exports_live_version_time(tmp_path: Path) -> None:
    raw = raw_config(tmp_path)
    with Watcher(parse_config(raw)) as watcher:
        watcher.run(max_windows=1)
    with LabelStore(tmp_path / "run" / "labels.db") as store:
        records = [row for row in store.round_records() if row["status"] == "completed"]
    completed_at = records[-1]["completed_at"]
    # A namespace of its own gives this watcher a new registry, as a new process would have.
    raw["monitoring"]["metrics"] = {"enabled": True, "port": 0, "namespace": "restart_test"}

    with Watcher(parse_config(raw)) as watcher:
        samples = scrape(watcher.recorder.metrics_url)

    assert samples[("restart_test_model_version_timestamp_seconds", ())] == pytest.approx(completed_at, abs=1e-3)
    staleness = samples[("restart_test_staleness_seconds", ())]
    assert math.isfinite(staleness)
    assert staleness >= 0
    assert samples[("restart_test_watch_round_failures_total", (("policy", "staleness"),))] == 0.0
    assert samples[("restart_test_watch_rounds_started_total", (("policy", "staleness"),))] == 0.0


def test_cli_prints_windows_and_one_endpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = raw_config(tmp_path, metrics={"enabled": True, "port": 0, "namespace": "cli_lines_test"})
    path = write_yaml(tmp_path, raw)

    with captured("al_ray.monitoring.exporter") as records:
        status = al_ray_main(["watch", str(path), "--max-windows", "2"])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    window_lines = [line for line in lines if line.startswith("window replay-file:rows-")]
    assert len(window_lines) == 2
    assert window_lines[0].endswith("; staleness fired (live version is 100 s old > 1 s); action: round requested")
    assert "round 0 completed (initial windows)" in lines
    assert "round 1 completed (staleness on replay-file:rows-100-200)" in lines
    endpoint = next(line for line in lines if line.startswith("serving Prometheus metrics at "))
    assert not endpoint.endswith(":0/metrics")
    started = {record.getMessage() for record in records if record.getMessage().startswith("serving")}
    # The rounds run inside the watcher share its endpoint instead of opening one each.
    assert started == {endpoint}


def test_constant_feature_warned_once(tmp_path: Path) -> None:
    config = parse_config(raw_config(tmp_path, constant_f1=True))

    with captured("al_ray.monitoring", logging.WARNING) as records, Watcher(config) as watcher:
        summary = watcher.run(max_windows=3)

    assert summary.rounds_succeeded == 3
    messages = [record.getMessage() for record in records if "constant" in record.getMessage()]
    assert len(messages) == 1
    assert "f1 (0.5)" in messages[0]


def test_broken_audit_chain_warned_at_start(tmp_path: Path) -> None:
    raw = raw_config(tmp_path, audit={"enabled": True})
    with Watcher(parse_config(raw)) as watcher:
        watcher.run(max_windows=1)
    with sqlite3.connect(tmp_path / "run" / "audit.db") as connection:
        connection.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2")

    with captured("al_ray.monitoring.watch_records", logging.WARNING) as records, Watcher(parse_config(raw)) as watcher:
        watcher.run(max_windows=1)

    warnings = [record.getMessage() for record in records if "already broken" in record.getMessage()]
    assert len(warnings) == 1
    assert "seq 2" in warnings[0]
    assert "al-ray audit verify --path" in warnings[0]
