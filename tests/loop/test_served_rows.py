"""Served uncertain rows join the next round's pool; test rows and unknown rows never do."""

from __future__ import annotations

import csv
import logging

import numpy as np

from al_ray.config import load_config
from al_ray.data import make_split
from al_ray.loop import ActiveLearningLoop
from al_ray.loop.runner import load_data
from al_ray.seeding import derive_seed
from al_ray.serving.feedback import UncertainRowStore


def test_served_rows_join_pool(small_config, tmp_path, caplog):
    served_path = tmp_path / "served.db"
    config = load_config(
        small_config(
            data={"pool_size": 300},
            strategy={"name": "random"},
            loop={"rounds": 2, "batch_size": 100},
            serving={"feedback": {"path": str(served_path)}},
        )
    )
    data = load_data(config)
    split = make_split(data, initial_labeled=20, test_size=1000, seed=derive_seed(3, "split"), pool_size=300)
    used = set(split.pool) | set(split.test) | set(split.initial_labeled)
    outside = np.array(sorted(set(data.row_ids.tolist()) - used)[:150], dtype=np.int64)
    store = UncertainRowStore(served_path)
    served = data.subset(outside)
    store.append(served.features, np.full(150, 0.9), "1", outside.tolist())
    # A test row, a pool row, and a row the dataset does not know: none may be added.
    extra = data.subset(np.array([split.test[0], split.pool[0]]))
    store.append(extra.features, np.full(2, 0.9), "1", [int(split.test[0]), int(split.pool[0])])
    store.append(served.features[:1], np.full(1, 0.9), "1", None)
    store.close()

    with caplog.at_level(logging.INFO, logger="al_ray.loop.served_rows"):
        ActiveLearningLoop(config, output_dir=tmp_path / "o").run()

    assert "round 1: read 153 served rows from" in caplog.text
    assert (
        "150 are in the pool for the first time; skipped: 1 already in the pool, labeled or queried, "
        "1 in the test set, 1 without a dataset row_id" in caplog.text
    )
    with open(tmp_path / "o" / "queries.csv", newline="") as stream:
        queried = {int(row["row_id"]) for row in csv.DictReader(stream)}
    assert len(queried) == 200
    # Random sampling over 300 pool rows and 150 served rows picks some of each.
    assert queried & set(outside.tolist())
    assert queried <= set(split.pool.tolist()) | set(outside.tolist())
