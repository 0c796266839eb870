"""Torch models through the whole loop: MC-dropout BALD, in the driver and on Ray Train."""

from __future__ import annotations

import csv

from al_ray.cli import main
from al_ray.labels import LabelStore

TORCH_MODEL = {"kind": "torch", "architecture": "mlp", "params": {"hidden": [32]}}
TRAIN = {"epochs": 5, "batch_size": 32, "patience": 5, "mc_samples": 8}


def _metrics(output):
    with LabelStore(output / "labels.db") as store:
        return {row["round_index"]: row["metrics"] for row in store.round_records()}


def _queries(output):
    with open(output / "queries.csv", newline="") as stream:
        return [(row["round"], row["row_id"]) for row in csv.DictReader(stream)]


def test_mc_dropout_bald_in_driver(small_config, tmp_path):
    config = small_config(
        model={**TORCH_MODEL, "fit_on": "driver", "train": TRAIN},
        strategy={"name": "bald"},
        loop={"rounds": 2, "batch_size": 10},
    )

    assert main(["run", str(config), "--output", str(tmp_path / "a")]) == 0
    assert main(["run", str(config), "--output", str(tmp_path / "b")]) == 0

    queries = _queries(tmp_path / "a")
    assert len(set(queries)) == 20
    assert queries == _queries(tmp_path / "b")
    assert _metrics(tmp_path / "a")[2]["train_epochs"] == 5.0


def test_ray_train_rounds_record_startup(ray_local, small_config, tmp_path):
    config = small_config(
        model={**TORCH_MODEL, "fit_on": "ray", "train": {**TRAIN, "num_workers": 2}},
        strategy={"name": "variation_ratios"},
        loop={"rounds": 1, "batch_size": 10},
    )
    output = tmp_path / "o"

    assert main(["run", str(config), "--output", str(output)]) == 0

    metrics = _metrics(output)
    assert set(metrics) == {0, 1}
    for round_metrics in metrics.values():
        assert round_metrics["train_startup_seconds"] > 0
        assert round_metrics["train_loop_seconds"] > 0
    assert (output / "ray_train" / "round_0001").is_dir()
