"""Serve-latency benchmark: a tiny run on local Ray Serve, CPU accounting and command-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks.serve_latency import CSV_COLUMNS, PATHS, CpuSampler, main, router_added

pytestmark = pytest.mark.timeout(240)

TINY_ARGS = [
    "--datasets", "letter_recognition",
    "--rows", "1,4",
    "--requests", "10",
    "--warm-up", "2",
    "--clients", "1,2",
    "--seconds", "0.25",
    "--train-rows", "300",
]


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def tiny_run(ray_local, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the benchmark once at tiny sizes in the module's Ray session and return its CSV."""
    out = tmp_path_factory.mktemp("serve_latency") / "serve_latency.csv"
    main([*TINY_ARGS, "--out", str(out)])
    return out


def test_serve_latency_csv_columns(tiny_run: Path) -> None:
    columns, _ = read_rows(tiny_run)
    assert columns == list(CSV_COLUMNS)
    assert list(tiny_run.parent.iterdir()) == [tiny_run]


def test_serve_latency_cases(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run)
    cases = [(row["split"], row["phase"], row["path"], int(row["rows_per_request"]), int(row["clients"])) for row in rows]
    champion = "champion only"
    split = "90%/10%"
    assert cases == [
        (champion, "latency", "http_predict", 1, 1),
        (champion, "latency", "version_handle", 1, 1),
        (champion, "latency", "model_only", 1, 1),
        (champion, "latency", "http_predict", 4, 1),
        (champion, "latency", "version_handle", 4, 1),
        (champion, "latency", "model_only", 4, 1),
        (champion, "latency", "router_ready", 0, 1),
        (champion, "latency", "http_versions", 0, 1),
        (champion, "throughput", "http_predict", 1, 1),
        (champion, "throughput", "version_handle", 1, 1),
        (champion, "throughput", "http_predict", 1, 2),
        (champion, "throughput", "version_handle", 1, 2),
        (champion, "throughput", "http_predict", 4, 1),
        (champion, "throughput", "version_handle", 4, 1),
        (champion, "throughput", "http_predict", 4, 2),
        (champion, "throughput", "version_handle", 4, 2),
        (split, "latency", "http_predict", 1, 1),
        (split, "throughput", "http_predict", 1, 1),
        (split, "throughput", "http_predict", 1, 2),
        (split, "latency", "http_predict", 4, 1),
        (split, "throughput", "http_predict", 4, 1),
        (split, "throughput", "http_predict", 4, 2),
    ]
    assert {case[2] for case in cases} == set(PATHS)
    for row in rows:
        assert row["dataset"] == "letter_recognition", row
        assert int(row["features"]) == 16, row


def test_serve_latency_every_request_served(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run)
    for row in rows:
        # Each served request was checked against the serving model's predictions in the driver.
        assert int(row["errors"]) == 0, row
        if row["phase"] == "latency":
            assert int(row["requests"]) == 10, row
        else:
            assert int(row["requests"]) >= 1, row
        requests_per_s = float(row["requests_per_s"])
        assert float(row["rows_per_s"]) == pytest.approx(requests_per_s * int(row["rows_per_request"]), abs=0.5), row
        assert float(row["p50_ms"]) <= float(row["p95_ms"]) <= float(row["p99_ms"]), row


def test_serve_latency_challenger_share(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run)
    for row in rows:
        share = float(row["challenger_share"])
        if row["split"] == "champion only":
            assert share == 0.0, row
        else:
            assert 0.0 <= share <= 1.0, row


def test_serve_latency_cpu_columns(tiny_run: Path) -> None:
    _, rows = read_rows(tiny_run)
    http = next(row for row in rows if row["path"] == "http_predict")
    # A request through the router runs code in the proxy, the router and the version.
    assert float(http["proxy_cpu_ms"]) > 0.0
    assert float(http["router_cpu_ms"]) > 0.0
    assert float(http["version_cpu_ms"]) > 0.0


def test_serve_latency_leaves_ray_running(tiny_run: Path) -> None:
    import ray
    from ray import serve

    assert ray.is_initialized()
    assert not [name for name in serve.status().applications if name.startswith("al_ray_bench")]


def test_cpu_used_follows_role_changes() -> None:
    before = {10: ("driver", 1.0), 20: ("other_ray", 5.0), 30: ("proxy", 2.0), 40: ("router", 9.0)}
    # Worker 20 became a version replica, 40 exited, and 50 started.
    after = {10: ("driver", 1.5), 20: ("version", 5.25), 30: ("proxy", 2.5), 50: ("router", 0.75)}
    used = CpuSampler.used(before, after)
    assert used == {"driver": 0.5, "proxy": 0.5, "router": 0.75, "version": 0.25, "other_ray": 0.0}


def test_router_added_subtracts_percentiles() -> None:
    def row(path: str, p50: float, p95: float, split: str = "champion only") -> dict[str, object]:
        return {
            "dataset": "letter_recognition",
            "rows_per_request": 1,
            "path": path,
            "phase": "latency",
            "split": split,
            "p50_ms": p50,
            "p95_ms": p95,
        }

    rows = [row("http_predict", 15.5, 20.0), row("version_handle", 5.25, 7.0), row("http_predict", 99.0, 99.0, "90%/10%")]
    assert router_added(rows) == ["| letter_recognition | 1 | 15.50 | 5.25 | 10.25 | 20.00 | 7.00 | 13.00 |"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--datasets", "iris"], "argument --datasets: unknown dataset 'iris'"),
        (["--rows", "0"], "argument --rows: invalid value '0': expected a whole number >= 1"),
        (["--seconds", "0"], "argument --seconds: invalid value '0': expected a number of seconds > 0"),
        (["--challenger-weight", "1"], "argument --challenger-weight: invalid value '1': expected a number in [0, 1)"),
        (["--warm-up", "-1"], "argument --warm-up: invalid value '-1': expected a whole number >= 0"),
    ],
)
def test_serve_latency_bad_arguments_exit_2(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "serve_latency.csv"
    with pytest.raises(SystemExit) as raised:
        main([*arguments, "--out", str(out)])

    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
