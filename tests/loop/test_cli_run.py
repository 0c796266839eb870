"""The CLI end to end on the real MNIST split: outputs, MLflow, repeatability."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from al_ray.cli import main


def _read_csv(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_run_writes_outputs(small_config, tmp_path, capsys):
    config = small_config(tracking={"enabled": True})
    output = tmp_path / "out"
    assert main(["run", str(config), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "completed" in printed
    curve = _read_csv(output / "learning_curve.csv")
    assert [int(row["round"]) for row in curve] == [0, 1, 2, 3]
    assert [int(row["n_labeled"]) for row in curve] == [20, 40, 60, 80]
    assert all(0.0 < float(row["accuracy"]) <= 1.0 for row in curve)
    queries = _read_csv(output / "queries.csv")
    assert len(queries) == 60
    assert len({row["row_id"] for row in queries}) == 60
    assert (output / "learning_curve.png").stat().st_size > 10_000
    assert (output / "mlflow.db").exists()


def test_run_records_mlflow(small_config, tmp_path):
    from mlflow.tracking import MlflowClient

    config = small_config(tracking={"enabled": True, "experiment": "cli-test"})
    output = tmp_path / "out"
    assert main(["run", str(config), "--output", str(output), "--rounds", "2"]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{output / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cli-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["strategy.name"] == "margin"
    history = client.get_metric_history(run.info.run_id, "accuracy")
    assert [point.step for point in history] == [0, 1, 2]
    for metric in ("macro_f1", "n_labeled", "round_seconds", "scoring_rows_per_s"):
        assert metric in run.data.metrics
    assert run.data.metrics["n_labeled"] == 60
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"learning_curve.csv", "queries.csv", "learning_curve.png"} <= artifacts
    assert run.outputs.model_outputs or client.search_logged_models([experiment.experiment_id])


def test_run_registers_version_per_round(small_config, tmp_path):
    from al_ray.labels import LabelStore
    from al_ray.loop.model_io import load_model
    from al_ray.tracking.registry import ModelRegistry, labeled_hash

    config = small_config(tracking={"enabled": True})
    output = tmp_path / "out"
    assert main(["run", str(config), "--output", str(output), "--rounds", "2"]) == 0
    # Resuming registers only the new round: versions keep their numbers.
    assert main(["run", str(config), "--output", str(output), "--rounds", "3", "--resume"]) == 0

    registry = ModelRegistry(f"sqlite:///{output / 'mlflow.db'}")
    versions = {info.version: info for info in registry.list_versions("mnist_small-margin")}
    assert sorted(versions) == [1, 2, 3, 4]
    assert [versions[v].round_index for v in (1, 2, 3, 4)] == [0, 1, 2, 3]
    assert [versions[v].parent_version for v in (1, 2, 3, 4)] == [None, "1", "2", "3"]
    assert [versions[v].n_labeled for v in (1, 2, 3, 4)] == [20, 40, 60, 80]
    assert versions[1].aliases == ("champion",)
    assert versions[4].aliases == ("challenger",)
    assert versions[2].strategy == "margin"

    queries = _read_csv(output / "queries.csv")
    assert {(row["round"], row["model_version"]) for row in queries} == {
        ("1", "models:/mnist_small-margin/1"),
        ("2", "models:/mnist_small-margin/2"),
        ("3", "models:/mnist_small-margin/3"),
    }
    first_rows = sorted(int(row["row_id"]) for row in queries if row["round"] == "1")
    with LabelStore(output / "labels.db") as store:
        initial = sorted(task.row_id for task in store.tasks(round_index=0))
    assert versions[1].tags["labeled_hash"] == labeled_hash(initial)
    assert versions[2].tags["labeled_hash"] == labeled_hash(initial + first_rows)

    features = np.random.default_rng(0).random((5, 784))
    reloaded = registry.load("mnist_small-margin", "2")
    saved = load_model(output / "models" / "round_0001.pkl")
    np.testing.assert_array_equal(reloaded.predict_proba(features), saved.predict_proba(features))


def test_same_seed_same_queries(small_config, tmp_path):
    config = small_config()
    assert main(["run", str(config), "--output", str(tmp_path / "a")]) == 0
    assert main(["run", str(config), "--output", str(tmp_path / "b")]) == 0
    assert main(["run", str(config), "--output", str(tmp_path / "c"), "--seed", "4"]) == 0
    first = _read_csv(tmp_path / "a" / "queries.csv")
    second = _read_csv(tmp_path / "b" / "queries.csv")
    other = _read_csv(tmp_path / "c" / "queries.csv")
    assert [(r["round"], r["row_id"]) for r in first] == [(r["round"], r["row_id"]) for r in second]
    assert [r["row_id"] for r in first] != [r["row_id"] for r in other]


@pytest.mark.parametrize("strategy", ["random", "least_confidence", "entropy"])
def test_run_each_strategy(small_config, tmp_path, strategy):
    config = small_config(loop={"rounds": 1, "batch_size": 10})
    assert main(["run", str(config), "--output", str(tmp_path / strategy), "--strategy", strategy]) == 0
    queries = _read_csv(tmp_path / strategy / "queries.csv")
    assert len(queries) == 10


def test_strategies_command(capsys):
    assert main(["strategies"]) == 0
    printed = capsys.readouterr().out
    for name in ("random", "least_confidence", "margin", "entropy"):
        assert name in printed
    assert "probabilities" in printed


def test_pool_exhausted_status(small_config, tmp_path, capsys):
    # 45 pool rows, 20 per round: 20, 20, then the last 5 and a warning, then exhausted.
    config = small_config(data={"pool_size": 45}, loop={"rounds": 5, "batch_size": 20})
    assert main(["run", str(config), "--output", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "pool exhausted" in captured.out
    assert "only 5 unlabeled rows are left" in captured.err
    queries = _read_csv(tmp_path / "out" / "queries.csv")
    assert len(queries) == 45


def test_label_budget_stops(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 5, "batch_size": 20, "label_budget": 50})
    assert main(["run", str(config), "--output", str(tmp_path / "out")]) == 0
    curve = _read_csv(tmp_path / "out" / "learning_curve.csv")
    assert int(curve[-1]["n_labeled"]) == 50
    assert "label budget reached" in capsys.readouterr().out


def test_compare_writes_plot(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 2, "batch_size": 20}, tracking={"enabled": True})
    output = tmp_path / "cmp"
    assert main(["compare", str(config), "--strategies", "margin,random", "--output", str(output)]) == 0
    rows = _read_csv(output / "comparison.csv")
    assert {row["strategy"] for row in rows} == {"margin", "random"}
    assert (output / "learning_curve.png").exists()
    assert (output / "mlflow.db").exists()
    random_queries = [r["row_id"] for r in _read_csv(output / "random" / "queries.csv")]
    margin_queries = [r["row_id"] for r in _read_csv(output / "margin" / "queries.csv")]
    assert random_queries != margin_queries
    assert np.unique(random_queries).size == 40


def test_compare_resume_extends(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 1, "batch_size": 10})
    output = tmp_path / "cmp"
    assert main(["compare", str(config), "--strategies", "margin,random", "--output", str(output)]) == 0
    assert main(["compare", str(config), "--strategies", "margin,random", "--output", str(output)]) == 2
    assert "--resume" in capsys.readouterr().err
    argv = ["compare", str(config), "--strategies", "margin,random", "--output", str(output), "--resume", "--rounds", "2"]
    assert main(argv) == 0
    rows = _read_csv(output / "comparison.csv")
    assert sorted((row["strategy"], row["round"]) for row in rows) == [
        ("margin", "0"), ("margin", "1"), ("margin", "2"), ("random", "0"), ("random", "1"), ("random", "2"),
    ]


def test_error_prints_no_table(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 1, "batch_size": 5})
    assert main(["run", str(config), "--output", str(tmp_path / "none"), "--resume"]) == 2
    assert capsys.readouterr().out == ""
