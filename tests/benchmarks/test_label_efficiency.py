"""Label-efficiency benchmark: curve helpers by hand, a tiny run, peers present or absent."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.label_efficiency import (
    CSV_COLUMNS,
    SUMMARY_COLUMNS,
    area_under_curve,
    labels_to_reach,
    main,
    missing_status,
)

# Letter recognition has 26 classes and 16 features, so a run of it takes well under a second.
TINY_ARGS = [
    "--datasets", "letter_recognition",
    "--seeds", "1",
    "--rounds", "2",
    "--batch", "5",
    "--initial", "26",
    "--pool-size", "200",
    "--test-size", "300",
]  # fmt: skip


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        return list(reader.fieldnames or []), list(reader)


def test_aulc_trapezoid_by_hand() -> None:
    # Trapezoids: (20 - 10) * (0.5 + 0.7) / 2 = 6 and (40 - 20) * (0.7 + 0.8) / 2 = 15,
    # so the area is 21 over a label range of 30: 0.7.
    assert area_under_curve(np.array([10, 20, 40]), np.array([0.5, 0.7, 0.8])) == pytest.approx(0.7)


def test_aulc_flat_curve_equals_accuracy() -> None:
    assert area_under_curve(np.array([5, 6, 100]), np.array([0.25, 0.25, 0.25])) == pytest.approx(0.25)


def test_aulc_single_point() -> None:
    assert area_under_curve(np.array([10]), np.array([0.4])) == 0.4


def test_aulc_rejects_bad_curves() -> None:
    with pytest.raises(ValueError, match=r"labels must increase strictly, got \[10, 10\]"):
        area_under_curve(np.array([10, 10]), np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match=r"got \(2,\) and \(3,\)"):
        area_under_curve(np.array([10, 20]), np.array([0.5, 0.6, 0.7]))


def test_labels_to_reach_first_point() -> None:
    labels = np.array([10, 20, 30, 40])
    accuracies = np.array([0.5, 0.8, 0.7, 0.9])
    assert labels_to_reach(labels, accuracies, 0.75) == 20
    assert labels_to_reach(labels, accuracies, 0.8) == 20
    assert labels_to_reach(labels, accuracies, 0.85) == 40
    assert labels_to_reach(labels, accuracies, 0.4) == 10


def test_labels_to_reach_not_reached() -> None:
    assert labels_to_reach(np.array([10, 20]), np.array([0.5, 0.6]), 0.61) is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the benchmark once on a tiny letter split and return its output folder."""
    folder = tmp_path_factory.mktemp("label_efficiency")
    main([*TINY_ARGS, "--out-dir", str(folder)])
    return folder


def test_tiny_run_files(tiny_run: Path) -> None:
    for name in ("label_efficiency.csv", "label_efficiency_summary.csv", "label_efficiency.png", "label_efficiency.md"):
        assert (tiny_run / name).is_file(), name
    assert (tiny_run / "label_efficiency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tiny_run_csv_columns(tiny_run: Path) -> None:
    columns, rows = read_rows(tiny_run / "label_efficiency.csv")
    assert columns == list(CSV_COLUMNS)
    # 3 libraries x 4 strategies, one seed.
    assert len(rows) == 12
    summary_columns, summary = read_rows(tiny_run / "label_efficiency_summary.csv")
    assert summary_columns == list(SUMMARY_COLUMNS)
    assert len(summary) == 12


def test_tiny_run_al_ray_curves(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run / "label_efficiency.csv")
    al_ray = [row for row in rows if row["library"] == "al_ray"]
    assert sorted(row["strategy"] for row in al_ray) == ["entropy", "least_confidence", "margin", "random"]
    for row in al_ray:
        assert row["status"] == "ok"
        # 26 initial labels, then 2 rounds of 5.
        assert row["labels"] == "26;31;36"
        assert row["final_labels"] == "36"
        accuracies = [float(value) for value in row["accuracies"].split(";")]
        assert len(accuracies) == 3
        assert all(0.0 <= value <= 1.0 for value in accuracies)
        assert float(row["aulc"]) == pytest.approx(
            area_under_curve(np.array([26, 31, 36]), np.array(accuracies)), abs=1e-5
        )
        assert float(row["target_accuracy"]) == pytest.approx(0.95 * float(row["full_pool_accuracy"]), abs=1e-5)


def test_tiny_run_markdown_table(tiny_run: Path) -> None:
    text = (tiny_run / "label_efficiency.md").read_text(encoding="utf-8")
    assert "python -m benchmarks.label_efficiency --datasets letter_recognition" in text
    assert "| letter_recognition | margin | al_ray | 36 |" in text


def test_modal_random_marked_missing(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run / "label_efficiency.csv")
    statuses = {row["strategy"]: row["status"] for row in rows if row["library"] == "modal"}
    expected = "not in modAL" if importlib.util.find_spec("modAL") else "skipped: modAL is not installed"
    assert statuses["random"] == expected


def test_peers_ok_when_installed(tiny_run: Path) -> None:
    pytest.importorskip("modAL")
    pytest.importorskip("skactiveml")
    _, rows = read_rows(tiny_run / "label_efficiency.csv")
    for row in rows:
        if (row["library"], row["strategy"]) == ("modal", "random"):
            continue
        assert row["status"] == "ok", (row["library"], row["strategy"], row["status"])
        assert row["labels"] == "26;31;36"


def test_peer_not_importable_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A None entry in sys.modules makes the import raise ImportError, as on a machine without the peer.
    monkeypatch.setitem(sys.modules, "modAL", None)
    monkeypatch.setitem(sys.modules, "skactiveml", None)
    assert missing_status("modal", "margin") == "skipped: modAL is not installed"
    assert missing_status("skactiveml", "random") == "skipped: skactiveml is not installed"
    assert missing_status("al_ray", "margin") is None

    main([*TINY_ARGS, "--strategies", "margin,random", "--out-dir", str(tmp_path)])
    _, rows = read_rows(tmp_path / "label_efficiency.csv")
    statuses = {(row["library"], row["strategy"]): row["status"] for row in rows}
    assert statuses[("al_ray", "margin")] == "ok"
    assert statuses[("modal", "margin")] == "skipped: modAL is not installed"
    assert statuses[("skactiveml", "random")] == "skipped: skactiveml is not installed"
    text = (tmp_path / "label_efficiency.md").read_text(encoding="utf-8")
    assert "| letter_recognition | margin | modAL | skipped: modAL is not installed |" in text
