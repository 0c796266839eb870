"""Cold start: no labels, or one class labeled, falls back to k-center on features."""

from __future__ import annotations

import logging

import numpy as np

from al_ray.config import load_config
from al_ray.data import make_split
from al_ray.labels import LabelStore
from al_ray.loop import ActiveLearningLoop
from al_ray.loop.model_io import load_model
from al_ray.loop.runner import load_data
from al_ray.models import PriorClassifier
from al_ray.seeding import derive_seed
from al_ray.strategies import ScoringBatch, SelectionContext, make_strategy


def _round_metrics(output):
    with LabelStore(output / "labels.db") as store:
        return {row["round_index"]: row["metrics"] for row in store.round_records()}, store.tasks()


def test_no_labels_falls_back_then_margin(small_config, tmp_path, caplog):
    config = load_config(small_config(data={"initial_labeled": 0}))
    output = tmp_path / "o"

    with caplog.at_level(logging.INFO, logger="al_ray.loop.runner"):
        result = ActiveLearningLoop(config, output_dir=output).run()

    assert result.status == "completed"
    metrics, tasks = _round_metrics(output)
    assert [metrics[index]["cold_start"] for index in (1, 2, 3)] == [1.0, 0.0, 0.0]
    assert "round 1: margin needs a model, and fewer than two classes are labeled; querying with kcenter" in caplog.text

    # Round 0 has no labels: the model is the uniform prior, which predicts class 0,
    # so its accuracy is the share of class 0 in the test set.
    data = load_data(config)
    split = make_split(data, initial_labeled=0, test_size=1000, seed=derive_seed(3, "split"), pool_size=3000)
    assert isinstance(load_model(output / "models" / "round_0000.pkl"), PriorClassifier)
    test_labels = data.subset(split.test).labels
    assert metrics[0]["n_labeled"] == 0.0
    assert metrics[0]["accuracy"] == np.mean(test_labels == 0)

    # Round 1's rows are exactly what k-center picks from the whole pool with the round's seed.
    pool = data.subset(split.pool)
    expected = make_strategy("kcenter").query(
        ScoringBatch(row_ids=pool.row_ids, features=pool.features),
        20,
        derive_seed(3, "select", 1),
        context=SelectionContext(labeled_features=pool.features[:0]),
    )
    round_one = sorted(task.row_id for task in tasks if task.round_index == 1)
    assert round_one == sorted(expected.row_ids.tolist())
    assert len({task.row_id for task in tasks}) == 60
    assert metrics[3]["accuracy"] > metrics[0]["accuracy"]


def test_one_initial_label_falls_back(small_config, tmp_path):
    config = load_config(small_config(data={"initial_labeled": 1}, loop={"rounds": 1, "batch_size": 20}))
    output = tmp_path / "o"

    ActiveLearningLoop(config, output_dir=output).run()

    metrics, _ = _round_metrics(output)
    assert metrics[0]["n_labeled"] == 1.0
    assert metrics[1]["cold_start"] == 1.0
    assert metrics[1]["n_labeled"] == 21.0


def test_random_never_falls_back(small_config, tmp_path):
    config = load_config(small_config(data={"initial_labeled": 0}, strategy={"name": "random"}, loop={"rounds": 1}))
    output = tmp_path / "o"

    ActiveLearningLoop(config, output_dir=output).run()

    metrics, _ = _round_metrics(output)
    assert metrics[1]["cold_start"] == 0.0
