"""Label-efficiency benchmark: curve helpers by hand, a tiny run, peers present or absent."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks._report import section_markers
from benchmarks.label_efficiency import (
    CSV_COLUMNS,
    STRATEGIES,
    SUMMARY_COLUMNS,
    area_under_curve,
    labels_to_reach,
    main,
    missing_status,
)
from benchmarks.label_efficiency_report import PeerComparison, headline_rows, summarize

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
    main([*TINY_ARGS, "--out-dir", str(folder), "--results-md", str(folder / "RESULTS.md")])
    return folder


@pytest.mark.slow
def test_tiny_run_files(tiny_run: Path) -> None:
    names = (
        "label_efficiency.csv",
        "label_efficiency_summary.csv",
        "label_efficiency_letter_recognition.png",
        "label_efficiency.md",
        "label_efficiency_run.json",
    )
    for name in names:
        assert (tiny_run / name).is_file(), name
    assert (tiny_run / "label_efficiency_letter_recognition.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_tiny_run_results_section(tiny_run: Path) -> None:
    text = (tiny_run / "RESULTS.md").read_text(encoding="utf-8")
    start, end = section_markers("label_efficiency")

    assert "## Label efficiency: every strategy against random, al_ray and peers" in text
    assert text.count(start) == 1
    assert text.count(end) == 1
    assert "### Headline: labels to reach random's final accuracy" in text


@pytest.mark.slow
def test_tiny_run_csv_columns(tiny_run: Path) -> None:
    columns, rows = read_rows(tiny_run / "label_efficiency.csv")
    assert columns == list(CSV_COLUMNS)
    # 3 libraries x every strategy, one seed.
    assert len(rows) == 3 * len(STRATEGIES)
    summary_columns, summary = read_rows(tiny_run / "label_efficiency_summary.csv")
    assert summary_columns == list(SUMMARY_COLUMNS)
    assert len(summary) == 3 * len(STRATEGIES)


@pytest.mark.slow
def test_tiny_run_al_ray_curves(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run / "label_efficiency.csv")
    al_ray = [row for row in rows if row["library"] == "al_ray"]
    assert sorted(row["strategy"] for row in al_ray) == sorted(STRATEGIES)
    for row in al_ray:
        assert row["status"] == "ok", row["strategy"]
        # 26 initial labels, then 2 rounds of 5.
        assert row["labels"] == "26;31;36"
        assert row["final_labels"] == "36"
        accuracies = [float(value) for value in row["accuracies"].split(";")]
        assert len(accuracies) == 3
        assert all(0.0 <= value <= 1.0 for value in accuracies)
        assert 0.0 <= float(row["final_macro_f1"]) <= 1.0
        assert float(row["aulc"]) == pytest.approx(
            area_under_curve(np.array([26, 31, 36]), np.array(accuracies)), abs=1e-5
        )
        assert float(row["target_accuracy"]) == pytest.approx(0.95 * float(row["full_pool_accuracy"]), abs=1e-5)


@pytest.mark.slow
def test_tiny_run_markdown_table(tiny_run: Path) -> None:
    text = (tiny_run / "label_efficiency.md").read_text(encoding="utf-8")
    assert "python -m benchmarks.label_efficiency --datasets letter_recognition" in text
    assert "| margin | " in text
    assert "| vote_entropy (committee) | " in text
    if importlib.util.find_spec("modAL"):
        assert "| letter_recognition | margin | modAL | `uncertainty.margin_sampling` | 1 |" in text


@pytest.mark.slow
def test_modal_random_marked_missing(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run / "label_efficiency.csv")
    statuses = {row["strategy"]: row["status"] for row in rows if row["library"] == "modal"}
    expected = "not in modAL" if importlib.util.find_spec("modAL") else "skipped: modAL is not installed"
    assert statuses["random"] == expected
    assert statuses["badge"] == expected


@pytest.mark.slow
def test_peers_ok_when_installed(tiny_run: Path) -> None:
    pytest.importorskip("modAL")
    pytest.importorskip("skactiveml")
    _, rows = read_rows(tiny_run / "label_efficiency.csv")
    ran = [row for row in rows if row["library"] != "al_ray" and not row["status"].startswith("not in")]
    # modAL: 3 uncertainty and 3 committee strategies; scikit-activeml: 9.
    assert len(ran) == 15
    for row in ran:
        assert row["status"] == "ok", (row["library"], row["strategy"], row["status"])
        assert row["labels"] == "26;31;36"


@pytest.mark.slow
def test_committee_members_shared(tiny_run: Path) -> None:
    pytest.importorskip("modAL")
    pytest.importorskip("skactiveml")
    _, rows = read_rows(tiny_run / "label_efficiency.csv")
    curves = {(row["library"], row["strategy"]): row["accuracies"] for row in rows}
    # Continuous measures on the same 5 bagged members pick the same rows in every library.
    assert curves[("modal", "consensus_entropy")] == curves[("al_ray", "consensus_entropy")]
    assert curves[("skactiveml", "bald")] == curves[("al_ray", "bald")]


@pytest.mark.slow
def test_report_only_rebuilds(tiny_run: Path) -> None:
    before = (tiny_run / "label_efficiency.md").read_text(encoding="utf-8")
    main(["--out-dir", str(tiny_run), "--results-md", str(tiny_run / "RESULTS.md"), "--report-only"])
    assert (tiny_run / "label_efficiency.md").read_text(encoding="utf-8") == before


def test_report_only_needs_earlier_run(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"--report-only needs .*label_efficiency\.csv"):
        main(["--out-dir", str(tmp_path), "--report-only"])


@pytest.mark.slow
def test_peer_not_importable_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A None entry in sys.modules makes the import raise ImportError, as on a machine without the peer.
    monkeypatch.setitem(sys.modules, "modAL", None)
    monkeypatch.setitem(sys.modules, "skactiveml", None)
    assert missing_status("modal", "margin") == "skipped: modAL is not installed"
    assert missing_status("skactiveml", "random") == "skipped: skactiveml is not installed"
    assert missing_status("al_ray", "margin") is None

    main([*TINY_ARGS, "--strategies", "margin,random", "--out-dir", str(tmp_path), "--results-md", str(tmp_path / "R.md")])
    _, rows = read_rows(tmp_path / "label_efficiency.csv")
    statuses = {(row["library"], row["strategy"]): row["status"] for row in rows}
    assert statuses[("al_ray", "margin")] == "ok"
    assert statuses[("modal", "margin")] == "skipped: modAL is not installed"
    assert statuses[("skactiveml", "random")] == "skipped: skactiveml is not installed"
    text = (tmp_path / "label_efficiency.md").read_text(encoding="utf-8")
    assert "| margin | " in text
    assert "skipped: modAL is not installed" in text


def comparison(final: float, aulc: float, seeds: int = 10, identical: bool = False) -> PeerComparison:
    return PeerComparison("d", "margin", "modal", seeds, final, aulc, 0.01, 0.02, identical)


def test_peer_verdicts() -> None:
    assert comparison(0.0, 0.0, identical=True).verdict == "identical curves"
    assert comparison(0.01, 0.02).verdict == "within the spread"
    assert comparison(0.011, 0.0).verdict == "al_ray worse beyond the spread"
    assert comparison(0.0, 0.021).verdict == "al_ray worse beyond the spread"
    assert comparison(-0.011, 0.0).verdict == "al_ray better beyond the spread"
    assert comparison(0.05, 0.0, seeds=1).verdict == "one seed: no spread to compare with"


def run_row(strategy: str, accuracies: str) -> dict[str, object]:
    values = np.array([float(value) for value in accuracies.split(";")])
    return {
        "dataset": "d", "library": "al_ray", "strategy": strategy, "seed": 0, "status": "ok", "seconds": 1.0,
        "labels": "10;20;30", "accuracies": accuracies, "final_labels": 30, "final_accuracy": values[-1],
        "final_macro_f1": 0.5, "aulc": area_under_curve(np.array([10, 20, 30]), values),
        "full_pool_accuracy": 0.9, "target_accuracy": 0.855, "labels_to_target": "",
        "random_final_accuracy": 0.7, "labels_to_random_final": labels_to_reach(np.array([10, 20, 30]), values, 0.7),
        "fraction_of_random_labels": labels_to_reach(np.array([10, 20, 30]), values, 0.7) / 30,
    }  # fmt: skip


def test_headline_picks_fewest_labels_then_aulc() -> None:
    rows = [
        run_row("random", "0.5;0.6;0.7"),
        # Both reach random's final 0.7 at 20 of 30 labels. AULC: margin (6 + 7.5) / 20 = 0.675,
        # entropy (6.5 + 7.25) / 20 = 0.6875, so entropy wins the tie.
        run_row("margin", "0.5;0.7;0.8"),
        run_row("entropy", "0.6;0.7;0.75"),
    ]
    (entry,) = headline_rows(summarize(rows), rows)

    assert entry["best"] == "entropy"
    assert entry["labels"] == 20
    assert entry["fraction"] == pytest.approx(20 / 30, abs=1e-3)
    assert entry["random_labels"] == 30
