"""`al-ray check` on configs whose locations work and configs whose locations do not (no Ray cluster)."""

from __future__ import annotations

import socket
import sqlite3
import time

import sqlalchemy as sa

from al_ray.cli import main
from al_ray.cluster.check import run_checks


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _by_item(results):
    return {result.item: result for result in results}


def test_good_config_all_ok(cluster_config, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = cluster_config(tracking={"enabled": True})
    assert main(["check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("data          ok    shipped dataset 'mnist_test'")
    assert lines[1] == "model         ok    logistic_regression builds (strategy margin)"
    assert any(line.startswith("output        ok") for line in lines)
    assert any(line.startswith("run           ok    no run in") for line in lines)
    assert any(line.startswith("label store   ok") and "will be created by the run" in line for line in lines)
    assert any(line.startswith("mlflow        ok") for line in lines)
    assert lines[-1].startswith("ray           skip  no cluster address")
    # The probes leave nothing behind.
    assert not (path.parent / "out").exists()


def test_bad_config_each_item_fails(cluster_config, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    port = _closed_port()
    path = cluster_config(
        data={"dataset": None, "path": str(tmp_path / "missing.csv"), "label_column": "label"},
        output=str(blocker / "out"),
        labels={"store": f"postgresql+psycopg://al@127.0.0.1:{port}/labels"},
        tracking={"enabled": True, "uri": f"http://127.0.0.1:{port}"},
    )
    started = time.monotonic()
    assert main(["check", str(path)]) == 1
    assert time.monotonic() - started < 20
    captured = capsys.readouterr()
    results = _by_item(run_checks(path))
    for item in ("data", "output", "label store", "mlflow"):
        assert results[item].status == "FAIL", results[item]
        assert results[item].fix
    assert "missing.csv' not found" in results["data"].detail
    assert "cannot write into" in results["output"].detail
    assert f"127.0.0.1:{port}" in results["label store"].detail
    assert f"http://127.0.0.1:{port} is unreachable" in results["mlflow"].detail
    assert "4 of 7 checks failed: data, output, label store, mlflow" in captured.err


def test_existing_sqlite_store_rolled_back(cluster_config, tmp_path):
    store = tmp_path / "labels.db"
    with sqlite3.connect(store) as connection:
        connection.execute("CREATE TABLE kept (id INTEGER)")
    results = _by_item(run_checks(cluster_config(labels={"store": str(store)})))
    assert results["label store"].status == "ok"
    assert "rolled it back" in results["label store"].detail
    with sqlite3.connect(store) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"kept"}


def test_label_store_url_probe(cluster_config, label_store_url):
    results = _by_item(run_checks(cluster_config(labels={"store": label_store_url})))
    assert results["label store"].status == "ok", results["label store"]
    if label_store_url.startswith("postgresql"):
        assert "rolled it back" in results["label store"].detail
        engine = sa.create_engine(label_store_url)
        try:
            assert sa.inspect(engine).get_table_names() == []
        finally:
            engine.dispose()


def test_bad_address_reported_not_raised(cluster_config):
    results = _by_item(run_checks(cluster_config(), "ray://127.0.0.1:10001"))
    assert results["ray"].status == "FAIL"
    assert "Ray Client address" in results["ray"].detail


def test_unreachable_address_bounded(cluster_config):
    path = cluster_config(cluster={"request_timeout_s": 1.0})
    started = time.monotonic()
    results = _by_item(run_checks(path, f"http://127.0.0.1:{_closed_port()}"))
    assert time.monotonic() - started < 5
    assert results["ray"].status == "FAIL"
    assert "is unreachable" in results["ray"].detail


def test_invalid_config_exits_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndata: {dataset: mnist_test}\nloop: {rounds: -1}\n")
    assert main(["check", str(path)]) == 2
    assert "loop.rounds" in capsys.readouterr().err


def test_misspelled_estimator_fails(cluster_config, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    path = cluster_config(model={"estimator": "logistic_regresion"})
    assert main(["check", str(path)]) == 1
    captured = capsys.readouterr()
    model_line = next(line for line in captured.out.splitlines() if line.startswith("model"))
    assert model_line.startswith("model         FAIL  unknown estimator 'logistic_regresion'; use one of")
    assert "1 of 7 checks failed: model" in captured.err


def test_strategy_params_fail(cluster_config):
    results = _by_item(run_checks(cluster_config(strategy={"name": "margin", "params": {"beta": 2}})))
    assert results["model"].status == "FAIL"
    assert "strategy 'margin' takes no parameters" in results["model"].detail


def test_committee_strategy_builds_committee(cluster_config):
    results = _by_item(run_checks(cluster_config(strategy={"name": "vote_entropy"})))
    assert results["model"].status == "ok"
    assert results["model"].detail == "committee of logistic_regression builds (strategy vote_entropy)"


def test_image_estimator_skipped(cluster_config):
    path = cluster_config(
        model={"estimator": "notinstalled_pkg.Classifier", "params": {}},
        cluster={"image_uri": "registry.example.com/al-ray:0.1.0"},
    )
    result = _by_item(run_checks(path))["model"]
    assert result.status == "skip"
    assert "module 'notinstalled_pkg' is not installed here" in result.detail
    assert "cluster.image_uri" in result.detail


def test_existing_run_warns(cluster_config, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "labels.db").touch()
    assert main(["check", str(cluster_config())]) == 0
    captured = capsys.readouterr()
    run_line = next(line for line in captured.out.splitlines() if line.startswith("run"))
    assert run_line.startswith(f"run           warn  {tmp_path / 'out' / 'labels.db'} already contains a run")
    assert "--more-rounds N" in run_line
    assert "--resume" in run_line
    assert "fix:  to start a new run instead, set output to another location" in captured.out
    assert "warnings: run" in captured.err


def test_database_store_run_skipped(cluster_config, label_store_url):
    # `al-ray run` does not check a store given as a URL for a run either.
    result = _by_item(run_checks(cluster_config(labels={"store": label_store_url})))["run"]
    assert result.status == "skip"
    assert "database URL" in result.detail


def test_feedback_path_echoed_and_probed(cluster_config, tmp_path):
    feedback = tmp_path / "serving" / "feedback.db"
    results = _by_item(run_checks(cluster_config(serving={"feedback": {"path": str(feedback)}})))
    assert results["feedback"].status == "ok"
    # The value as written, not as a sqlite:/// URL.
    assert results["feedback"].detail.startswith(f"{feedback} will be created by the Serve app")
    assert "sqlite:" not in results["feedback"].detail


def test_feedback_path_unwritable_fails(cluster_config, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    results = _by_item(run_checks(cluster_config(serving={"feedback": {"path": str(blocker / "feedback.db")}})))
    assert results["feedback"].status == "FAIL"
    assert results["feedback"].fix
