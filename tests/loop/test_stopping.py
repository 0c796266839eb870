"""Stopping criteria: label budget, target accuracy, stabilizing predictions."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import cohen_kappa_score

from al_ray.config import load_config
from al_ray.loop import ActiveLearningLoop
from al_ray.loop.model_io import load_model
from al_ray.loop.runner import load_data


def test_target_accuracy_stops(small_config, tmp_path):
    config = load_config(small_config(loop={"rounds": 6, "batch_size": 20, "target_accuracy": 0.5}))
    result = ActiveLearningLoop(config, output_dir=tmp_path / "o").run()
    assert result.status == "target accuracy reached"
    # Round 0 already reaches 50% on MNIST with 20 labels, so round 1 is the last.
    assert [r.round_index for r in result.rounds] == [0, 1]
    assert result.final.accuracy >= 0.5


def test_stabilizing_stops_and_records_kappa(small_config, tmp_path):
    stabilizing = {"threshold": 0.3, "window": 2, "stop_set_size": 300}
    config = load_config(small_config(loop={"rounds": 6, "batch_size": 20, "stabilizing": stabilizing}))
    output = tmp_path / "o"
    result = ActiveLearningLoop(config, output_dir=output).run()
    assert result.status == "predictions stabilized"
    assert len(result.rounds) == 3  # rounds 0, 1, 2: kappas of rounds 1 and 2 both >= 0.3

    # The recorded kappa equals one computed by hand from the saved models.
    from al_ray.labels import LabelStore

    with LabelStore(output / "labels.db") as store:
        records = {row["round_index"]: row["metrics"] for row in store.round_records()}
        assert store.get_meta("status") == "predictions stabilized"
    data = load_data(config)
    from al_ray.data import make_split
    from al_ray.seeding import derive_seed

    split = make_split(data, initial_labeled=20, test_size=1000, seed=derive_seed(3, "split"), pool_size=3000)
    rng = np.random.default_rng(derive_seed(3, "stop-set"))
    rows = np.sort(rng.choice(split.pool, size=300, replace=False))
    features = data.subset(rows).features
    first = load_model(output / "models" / "round_0001.pkl").predict(features)
    second = load_model(output / "models" / "round_0002.pkl").predict(features)
    assert records[2]["stop_set_kappa"] == cohen_kappa_score(first, second)
    assert "stop_set_kappa" not in records[0]


def test_stabilizing_threshold_not_met_runs_all(small_config, tmp_path):
    stabilizing = {"threshold": 1.0, "window": 1, "stop_set_size": 300}
    config = load_config(small_config(loop={"rounds": 2, "batch_size": 20, "stabilizing": stabilizing}))
    result = ActiveLearningLoop(config, output_dir=tmp_path / "o").run()
    assert result.status == "completed"
    assert len(result.rounds) == 3
