"""Larger-than-memory benchmark: the run plan, and a tiny streamed run checked against in-process scoring."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from benchmarks.huge_pool import main, planned_rows


def _args(rows: int, max_minutes: float, calibrate_rows: int = 1_000_000) -> argparse.Namespace:
    return argparse.Namespace(rows=rows, max_minutes=max_minutes, calibrate_rows=calibrate_rows)


def test_plan_runs_everything_in_budget() -> None:
    # 10^8 rows at 100,000 rows/s take 1,000 s, inside 40 minutes.
    assert planned_rows(_args(100_000_000, 40.0), 100_000.0) == (100_000_000, 1000.0)


def test_plan_caps_rows_to_budget() -> None:
    # 10 minutes at 25,000 rows/s score 15,000,000 rows; the full 10^8 would take 4,000 s.
    assert planned_rows(_args(100_000_000, 10.0), 25_000.0) == (15_000_000, 4000.0)


def test_plan_never_below_calibration() -> None:
    assert planned_rows(_args(100_000_000, 0.01, calibrate_rows=2_000_000), 1000.0) == (2_000_000, 100_000.0)


@pytest.mark.slow
def test_tiny_streamed_run(ray_local, tmp_path: Path) -> None:
    rows = main(
        [
            "--rows", "30000", "--calibrate-rows", "10000", "--probe-sizes", "30000", "--probe-tools", "al_ray_local",
            "--block-rows", "4000", "--features", "8", "--memory-limit-gib", "4", "--sample-interval-s", "0.05",
            "--out-dir", str(tmp_path),
        ]
    )  # fmt: skip
    phases = {row["phase"]: row for row in rows}
    assert sorted(phases) == ["calibration", "probe", "run"]
    assert phases["probe"]["status"] == "ok", phases["probe"]["detail"]
    run = phases["run"]
    assert run["rows"] == 30000
    assert len(run["selected"]) == 100
    # Streamed Ray Data scoring and in-process scoring of the same pool pick the same rows.
    assert run["overlap"] == 1.0
    assert run["reference"] == "al_ray_local"

    with open(tmp_path / "huge_pool_memory.csv", newline="") as stream:
        samples = list(csv.DictReader(stream))
    assert len(samples) >= 2
    assert all(float(sample["driver_rss_mib"]) > 0 for sample in samples)
    markdown = (tmp_path / "huge_pool.md").read_text(encoding="utf-8")
    assert "- The run: all 30,000 rows" in markdown
    assert "Largest pool scored: al_ray in-process 30,000 rows." in markdown
    assert (tmp_path / "huge_pool.png").stat().st_size > 0
