"""Scoring-throughput benchmark: a tiny run of every al_ray path and numpy, and a pool that does not fit."""

from __future__ import annotations

import csv
import pickle
from pathlib import Path

import pytest

from benchmarks._in_memory import InMemorySpec, run_in_memory
from benchmarks._synthetic_pool import fit_models
from benchmarks._throughput_report import crossover_lines, target_lines
from benchmarks.scoring_throughput import main


@pytest.fixture(scope="module")
def tiny_run(ray_local, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out_dir = tmp_path_factory.mktemp("throughput")
    rows = main(
        [
            "--features", "8", "--sizes", "3000", "--models", "logistic",
            "--tools", "al_ray_local,al_ray_ray,numpy", "--memory-limit-gib", "4", "--out-dir", str(out_dir),
        ]
    )  # fmt: skip
    return out_dir, rows


@pytest.mark.slow
def test_every_tool_scores(tiny_run: tuple[Path, list[dict]]) -> None:
    _, rows = tiny_run
    assert sorted(row["tool"] for row in rows) == ["al_ray_local", "al_ray_ray", "numpy"]
    for row in rows:
        assert row["status"] == "ok", row["detail"]
        assert row["rows_per_s"] > 0
        assert row["driver_peak_rss_mib"] > 0


@pytest.mark.slow
def test_tools_pick_same_rows(tiny_run: tuple[Path, list[dict]]) -> None:
    _, rows = tiny_run
    assert [row["overlap"] for row in rows] == [1.0, 1.0, 1.0]


@pytest.mark.slow
def test_ray_tree_memory_measured(tiny_run: tuple[Path, list[dict]]) -> None:
    _, rows = tiny_run
    ray_row = next(row for row in rows if row["tool"] == "al_ray_ray")
    assert ray_row["ray_pool"] == "materialized"
    # The tree includes the Ray processes, so it uses more memory than the driver alone.
    assert ray_row["tree_peak_pss_mib"] > ray_row["driver_peak_rss_mib"]


@pytest.mark.slow
def test_files_written(tiny_run: tuple[Path, list[dict]]) -> None:
    out_dir, _ = tiny_run
    with open(out_dir / "scoring_throughput.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 3
    assert (out_dir / "scoring_throughput.png").stat().st_size > 0
    markdown = (out_dir / "scoring_throughput.md").read_text(encoding="utf-8")
    assert "| 8 | logistic | 3,000 |" in markdown
    assert "8 features, logistic:" in markdown


@pytest.mark.slow
def test_pool_over_limit_did_not_fit(tmp_path: Path) -> None:
    models_path = tmp_path / "models.pkl"
    with open(models_path, "wb") as stream:
        pickle.dump(fit_models(64, 0, ["logistic"]), stream)
    # 12,000,000 × 64 float32 is 2.9 GiB, above the 2 GiB limit, so allocating it fails at once.
    spec = InMemorySpec("numpy", 12_000_000, 64, "logistic", str(models_path), 10, 0, 4096, 2 * 2**30)
    result = run_in_memory(spec, timeout_s=120)
    assert result.status == "did_not_fit"
    assert result.stage == "pool"
    assert "MemoryError while building the pool" in result.detail


def _row(tool: str, rows: int, rate: float, status: str = "ok") -> dict:
    return {"features": 64, "model": "logistic", "rows": rows, "tool": tool, "status": status, "rows_per_s": rate,
            "driver_peak_rss_mib": 300.0, "ray_pool": "materialized"}  # fmt: skip


def test_crossover_found_by_hand() -> None:
    rows = [
        _row("al_ray_local", 10, 100.0), _row("al_ray_ray", 10, 50.0),
        _row("al_ray_local", 100, 100.0), _row("al_ray_ray", 100, 150.0),
        _row("al_ray_local", 1000, 0.0, status="did_not_fit"), _row("al_ray_ray", 1000, 150.0),
    ]  # fmt: skip
    expected = (
        "- 64 features, logistic: Ray Data was ahead from 100 rows on "
        "(Ray Data / in-process rows/s: 10: 0.5x, 100: 1.5x, 1,000: in-process did not run)."
    )
    assert crossover_lines(rows) == [expected]


def test_target_ratio_by_hand() -> None:
    rows = [_row("al_ray_ray", 10_000_000, 800.0), _row("numpy", 10_000_000, 1000.0)]
    lines = target_lines(rows)
    assert lines[0].endswith("0.80x (target ≥ 1.0x): missed by 20% of the numpy scorer's rate.")
    assert lines[1].startswith("- Ray Data driver RSS: at most 300 MiB")
    assert lines[1].endswith(": met.")
