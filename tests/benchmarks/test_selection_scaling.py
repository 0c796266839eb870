"""Selection-scaling benchmark: CSV contents at tiny sizes and command-line errors."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.selection_scaling import CSV_COLUMNS, main

REPO_ROOT = Path(__file__).resolve().parents[2]

TINY_ARGS = [
    "--sizes", "300,1000",
    "--dims", "8",
    "--classes", "4",
    "--labeled-rows", "20",
    "--badge-wide", "200x12x16",
]


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the benchmark once at tiny sizes and return the folder that contains its CSV."""
    folder = tmp_path_factory.mktemp("scaling")
    main([*TINY_ARGS, "--out", str(folder / "scaling.csv")])
    return folder


def test_scaling_csv_columns_and_cases(tiny_run: Path) -> None:
    out = tiny_run / "scaling.csv"
    columns, rows = read_rows(out)
    assert columns == list(CSV_COLUMNS)
    cases = [(row["selector"], int(row["candidates"])) for row in rows]
    assert cases == [
        ("badge", 300),
        ("badge", 1000),
        ("coreset", 300),
        ("coreset", 1000),
        ("cluster-margin", 300),
        ("cluster-margin", 1000),
        ("badge", 200),
    ]
    assert list(tiny_run.iterdir()) == [out]


def test_scaling_selections_distinct(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run / "scaling.csv")
    # 1% of the candidates, rounded up: 3 of 300, 10 of 1000, 2 of 200.
    expected_batch = {300: 3, 1000: 10, 200: 2}
    for row in rows:
        batch = expected_batch[int(row["candidates"])]
        assert int(row["batch"]) == batch, row
        assert int(row["selected"]) == batch, row
        assert int(row["distinct"]) == batch, row


def test_scaling_memory_columns(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run / "scaling.csv")
    wide = rows[-1]
    # BADGE at 200 x 12 x 16: a dense float64 gradient matrix takes
    # 200 * 12 * 16 * 8 bytes = 0.29 MiB, and one row of factors and
    # embeddings (12 + 16) * 8 = 224 bytes.
    assert wide["dense_gradient_mib"] == "0.3"
    assert int(wide["float64_row_bytes"]) == 224
    coreset = rows[2]
    assert coreset["selector"] == "coreset"
    assert int(coreset["labeled_rows"]) == 20
    assert coreset["dense_gradient_mib"] == ""
    assert int(coreset["float64_row_bytes"]) == 8 * 8
    for row in rows:
        assert float(row["peak_mib"]) > 0.0, row
        assert float(row["input_mib"]) > 0.0, row


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sizes", "1000,0"], "argument --sizes: invalid value '0': expected a whole number >= 1"),
        (["--sizes", "-5"], "argument --sizes: invalid value '-5': expected a whole number >= 1"),
        (["--dims", "0"], "argument --dims: invalid value '0': expected a whole number >= 1"),
        (["--batch", "0"], "argument --batch: invalid value '0': expected a whole number >= 1"),
        (
            ["--selectors", "badge,kmeans"],
            (
                "argument --selectors: unknown selector 'kmeans': expected a comma-separated list "
                "of badge, coreset, cluster-margin"
            ),
        ),
        (
            ["--badge-wide", "20000x100"],
            "argument --badge-wide: invalid value '20000x100': expected CANDIDATESxCLASSESxDIMS",
        ),
        (["--labeled-rows", "-1"], "argument --labeled-rows: invalid value '-1': expected a whole number >= 0"),
        (["--repeats", "two"], "argument --repeats: invalid value 'two': expected a whole number >= 1"),
        (["--batch-fraction", "1.5"], "argument --batch-fraction: invalid value '1.5': expected a number in"),
    ],
)
def test_scaling_bad_arguments_exit_2(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "scaling.csv"
    with pytest.raises(SystemExit) as raised:
        main([*arguments, "--out", str(out)])

    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_scaling_fixed_batch(tmp_path: Path) -> None:
    out = tmp_path / "scaling.csv"
    main(["--selectors", "badge", "--sizes", "40", "--batch", "50", "--badge-wide", "none", "--out", str(out)])

    _, rows = read_rows(out)
    assert len(rows) == 1
    # A batch above the candidate count selects every candidate once.
    assert int(rows[0]["batch"]) == 50
    assert int(rows[0]["selected"]) == 40
    assert int(rows[0]["distinct"]) == 40


def test_scaling_wide_case_keeps_fraction(tmp_path: Path) -> None:
    out = tmp_path / "scaling.csv"
    main(["--selectors", "badge", "--sizes", "40", "--batch", "5", "--badge-wide", "300x4x8", "--out", str(out)])

    _, rows = read_rows(out)
    batches = [(int(row["candidates"]), int(row["batch"])) for row in rows]
    # --batch sizes the main cases, and the wide case keeps 1% of its 300 candidates.
    assert batches == [(40, 5), (300, 3)]


def test_scaling_command_exit_2() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.selection_scaling", "--selectors", "margin"],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 2
    assert "unknown selector 'margin'" in completed.stderr
    assert completed.stdout == ""
