"""Benchmark helpers: the synthetic pool, the numpy scorer, RESULTS.md sections and the table runner."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from benchmarks.__main__ import main as run_table_main
from benchmarks._in_memory import numpy_margin_top_n
from benchmarks._report import RESULTS_MD, replace_section, section_markers
from benchmarks._synthetic_pool import fill_pool, make_generate_batch, row_features
from benchmarks._tables import TABLES, csv_markdown


@pytest.mark.parametrize("n_features", [1, 3, 64, 784])
def test_row_features_independent_of_blocks(n_features: int) -> None:
    whole = row_features(0, 200, n_features, seed=5)
    pieces = np.vstack([row_features(start, min(7, 200 - start), n_features, seed=5) for start in range(0, 200, 7)])
    assert whole.dtype == np.float32
    assert whole.shape == (200, n_features)
    assert np.array_equal(whole, pieces)


def test_row_features_depend_on_seed() -> None:
    assert not np.array_equal(row_features(10, 5, 4, seed=0), row_features(10, 5, 4, seed=1))


def test_row_features_uniform_unit_interval() -> None:
    values = row_features(0, 5000, 8, seed=0)
    assert values.min() >= 0.0
    assert values.max() < 1.0
    assert abs(float(values.mean()) - 0.5) < 0.01


def test_fill_pool_matches_row_features() -> None:
    # 70,000 rows span two fill slices of 65,536 rows.
    pool = fill_pool(70_000, 2, seed=3)
    assert np.array_equal(pool[65_530:65_540], row_features(65_530, 10, 2, seed=3))


def test_generate_batch_adds_features() -> None:
    batch = make_generate_batch(4, seed=2)({"id": np.arange(10, 15)})
    assert batch["row_id"].tolist() == [10, 11, 12, 13, 14]
    assert np.array_equal(batch["features"], row_features(10, 5, 4, seed=2))


def test_generate_batch_rejects_gaps() -> None:
    with pytest.raises(ValueError, match="expected consecutive row ids, got a batch from 1 to 5"):
        make_generate_batch(4, seed=2)({"id": np.array([1, 2, 5])})


def test_numpy_scorer_hand_computed() -> None:
    # One linear layer with identity weights: the logits are the rows themselves.
    # Softmax of (0, 0) has margin 0; of (1, 0) about 0.462; of (3, 0) about 0.905;
    # of (0.5, 0) about 0.245. The two smallest margins are rows 2 and 4.
    pool = np.array([[3, 0], [1, 0], [0, 0], [3, 0], [0.5, 0]], dtype=np.float32)
    layers = [(np.eye(2), np.zeros(2))]
    assert numpy_margin_top_n(pool, layers, 2).tolist() == [2, 4]


def test_numpy_scorer_relu_hidden_layer() -> None:
    # ReLU zeroes the negative input, so row 0 gets logits (0, 0) and the smallest margin.
    pool = np.array([[-2.0], [2.0], [1.0]], dtype=np.float32)
    layers = [(np.array([[1.0]]), np.array([0.0])), (np.array([[1.0, 0.0]]), np.array([0.0, 0.0]))]
    assert numpy_margin_top_n(pool, layers, 1).tolist() == [0]


def test_replace_section_appends_then_replaces(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\nIntro.\n", encoding="utf-8")
    replace_section("demo", "first body", path, heading="## Demo")
    start, end = section_markers("demo")
    assert path.read_text(encoding="utf-8") == f"# Benchmark results\n\nIntro.\n\n## Demo\n\n{start}\nfirst body\n{end}\n"

    with open(path, "a", encoding="utf-8") as stream:
        stream.write("\nA reading written by hand.\n")
    replace_section("demo", "second body", path, heading="## Demo")
    text = path.read_text(encoding="utf-8")
    assert f"{start}\nsecond body\n{end}" in text
    assert "first body" not in text
    assert text.count("## Demo") == 1
    assert text.endswith("A reading written by hand.\n")


def test_replace_section_rejects_duplicate_markers(tmp_path: Path) -> None:
    start, end = section_markers("demo")
    path = tmp_path / "RESULTS.md"
    original = f"{start}\na\n{end}\n{start}\nb\n{end}\n"
    path.write_text(original, encoding="utf-8")
    with pytest.raises(ValueError, match="has 2 start and 2 end markers for section 'demo'"):
        replace_section("demo", "new", path)
    assert path.read_text(encoding="utf-8") == original


def test_table_runner_writes_csv_plot_section(tmp_path: Path) -> None:
    results_md = tmp_path / "RESULTS.md"
    out_dir = tmp_path / "out"
    status = run_table_main(
        ["selection_scaling", "--smoke", "--out-dir", str(out_dir), "--results-md", str(results_md), "--selectors", "badge"]
    )
    assert status == 0
    with open(out_dir / "selection_scaling.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["selector"], row["candidates"]) for row in rows] == [("badge", "1000")]
    assert (out_dir / "selection_scaling.png").stat().st_size > 0
    text = results_md.read_text(encoding="utf-8")
    start, end = section_markers("selection_scaling")
    assert "## Batch-diverse selection" in text
    assert "`python -m benchmarks selection_scaling --smoke" in text
    assert "| badge | 1,000 |" in text
    assert text.index(start) < text.index("Machine: ") < text.index(end)


def test_csv_markdown_rounds_numbers() -> None:
    lines = csv_markdown(["name", "rate", "share"], [{"name": "a|b", "rate": "945212.7", "share": "0.012345"}])
    assert lines == ["| name | rate | share |", "|---|---|---|", "| a/b | 945,213 | 0.01235 |"]


def test_table_runner_rejects_unknown_table(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_table_main(["no_such_table"])
    assert "invalid choice: 'no_such_table'" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(TABLES))
def test_results_md_marks_every_table(name: str) -> None:
    # A table without markers would be appended as a second section on its
    # next run instead of replacing the one already there.
    text = RESULTS_MD.read_text(encoding="utf-8")
    start, end = section_markers(name)
    assert text.count(start) == 1
    assert text.count(end) == 1
    assert text.index(start) < text.index(end)
