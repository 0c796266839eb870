"""Helpers for loop and CLI tests: small real-data configs written to tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml


def write_config(folder: Path, **sections) -> Path:
    """Write a small MNIST config (3 rounds of 20) into ``folder``, with overrides merged in."""
    config = {
        "name": "mnist_small",
        "seed": 3,
        "data": {"dataset": "mnist_test", "initial_labeled": 20, "test_size": 1000, "pool_size": 3000},
        "model": {"estimator": "logistic_regression", "params": {"max_iter": 200}, "fit_on": "driver"},
        "strategy": {"name": "margin"},
        "loop": {"rounds": 3, "batch_size": 20},
        "scoring": {"mode": "local", "batch_rows": 1024},
        "tracking": {"enabled": False},
    }
    for section, values in sections.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture
def small_config(tmp_path):
    return lambda **sections: write_config(tmp_path, **sections)
