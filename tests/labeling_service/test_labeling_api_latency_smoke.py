"""The labeling latency benchmark's smoke run: 10 annotators against `al-ray label serve` on SQLite."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks.labeling_latency import (
    CSV_COLUMNS,
    OPERATIONS,
    SMOKE_ANNOTATORS,
    SMOKE_ANSWERS,
    main,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_smoke_run_writes_percentiles(tmp_path: Path, capsys) -> None:
    out = tmp_path / "labeling_latency.csv"

    main(["--smoke", "--databases", "sqlite", "--out", str(out)])

    with open(out, newline="") as stream:
        reader = csv.DictReader(stream)
        columns, rows = reader.fieldnames, list(reader)
    assert columns == list(CSV_COLUMNS)
    assert [(row["database"], row["operation"]) for row in rows] == [("sqlite", operation) for operation in OPERATIONS]
    by_operation = {row["operation"]: row for row in rows}
    # Every annotator submits its answers; each answer follows one next.
    assert int(by_operation["submit"]["requests"]) == SMOKE_ANNOTATORS * SMOKE_ANSWERS
    assert int(by_operation["next"]["requests"]) == SMOKE_ANNOTATORS * SMOKE_ANSWERS
    for row in rows:
        assert row["errors"] == "0"
        assert 0 < float(row["p50_ms"]) <= float(row["p95_ms"]) <= float(row["p99_ms"]) <= float(row["max_ms"])
    table = capsys.readouterr().out
    assert "| sqlite | next | 10 |" in table
    assert "| sqlite | submit | 10 |" in table


def test_unknown_database_rejected(capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--databases", "mysql"])

    assert raised.value.code == 2
    assert "unknown database 'mysql'" in capsys.readouterr().err
