"""Helpers for cluster tests: a small real-data MNIST config written to a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


def write_config(folder: Path, name: str = "config.yaml", **sections) -> Path:
    """Write a small MNIST config (2 rounds of 20 on a 1,000-row pool) into ``folder``; sections merge in."""
    config = {
        "name": "mnist_cluster",
        "seed": 1,
        "output": str(folder / "out"),
        "data": {"dataset": "mnist_test", "initial_labeled": 20, "test_size": 500, "pool_size": 1000},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 100}, "fit_num_cpus": 0.5},
        "strategy": {"name": "margin"},
        "loop": {"rounds": 2, "batch_size": 20},
        "scoring": {"mode": "local"},
        "tracking": {"enabled": False},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    path = folder / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def cluster_config(tmp_path):
    return lambda **sections: write_config(tmp_path, **sections)
