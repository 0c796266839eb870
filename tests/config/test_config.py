"""Config loading: every key validated, mistakes named with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from al_ray.config import load_config, parse_config
from al_ray.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MINIMAL = {"name": "t", "data": {"dataset": "mnist_test"}}


@pytest.mark.parametrize("name", ["mnist.yaml", "letter.yaml"])
def test_shipped_configs_load(name):
    config = load_config(REPO / "configs" / name)
    assert config.loop.rounds >= 10


def test_defaults():
    config = parse_config(MINIMAL)
    assert config.strategy.name == "margin"
    assert config.scoring.mode == "auto"
    assert config.labels.source == "oracle"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({**MINIMAL, "loop": {"batchsize": 3}}, "unknown key 'loop.batchsize'; did you mean 'batch_size'"),
        ({**MINIMAL, "sede": 1}, "unknown key 'sede'; did you mean 'seed'"),
        ({**MINIMAL, "loop": {"batch_size": -1}}, "loop.batch_size: Input should be greater than 0"),
        ({**MINIMAL, "strategy": {"name": "foo"}}, "strategy.name: unknown strategy; choose one of"),
        ({**MINIMAL, "scoring": {"mode": "gpu"}}, "scoring.mode: Input should be 'auto', 'local' or 'ray'"),
        ({"name": "t", "data": {}}, "set exactly one of data.dataset"),
        ({"name": "t", "data": {"path": "x.csv"}}, "data.path needs data.label_column"),
        ({"data": {"dataset": "mnist_test"}}, "missing required key 'name'"),
        ({**MINIMAL, "model": {"kind": "torch"}}, "model.kind torch needs model.architecture: mlp or cnn"),
        (
            {**MINIMAL, "model": {"kind": "torch", "architecture": "cnn", "estimator": "knn"}},
            "model.estimator is for kind sklearn",
        ),
        (
            {**MINIMAL, "model": {"kind": "torch", "architecture": "mlp", "committee": {"size": 3}}},
            "a torch model's committee is MC dropout",
        ),
        ({**MINIMAL, "model": {"architecture": "mlp"}}, "model.architecture is for kind torch"),
        (
            {**MINIMAL, "model": {"kind": "torch", "architecture": "mlp", "standardize": True}},
            r"model: model.standardize is for kind sklearn; remove it, a torch model takes the features as they are$",
        ),
        ({**MINIMAL, "model": {"train": {"epochs": 3}}}, "model.train is for kind torch"),
        (
            {**MINIMAL, "serving": {"weights": {"champion": 0.9, "challenger": 0.2}}},
            r"serving.weights: weights must sum to 1, got .* \(sum 1.1\)",
        ),
        (
            {**MINIMAL, "serving": {"weights": {"champion": 1.5, "challenger": -0.5}}},
            r"serving.weights: weights must be in \[0, 1\]",
        ),
        ({**MINIMAL, "serving": {"rollout": {"steps": [0.5, 0.2, 1.0]}}}, "serving.rollout.steps: steps must increase"),
        ({**MINIMAL, "serving": {"rollout": {"steps": [0.1, 0.5]}}}, "the last step must be 1.0"),
        (
            {**MINIMAL, "model": {"kind": "torch", "architecture": "mlp", "train": {"validation_fraction": 1.0}}},
            "model.train.validation_fraction: Input should be less than 1",
        ),
    ],
)
def test_invalid_config(raw, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_config(["a"])


def test_relative_path_resolves_against_config(tmp_path):
    folder = tmp_path / "cfg"
    folder.mkdir()
    path = folder / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "data": {"path": "rows.csv", "label_column": "y"}}))
    assert load_config(path).data.path == str((folder / "rows.csv").resolve())


def test_invalid_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(path)


def test_override_revalidates():
    config = parse_config(MINIMAL)
    assert config.with_overrides(**{"loop.rounds": 3}).loop.rounds == 3
    with pytest.raises(ConfigError, match="loop.rounds"):
        config.with_overrides(**{"loop.rounds": -1})


def test_torch_defaults():
    config = parse_config({**MINIMAL, "model": {"kind": "torch", "architecture": "cnn"}})

    assert config.model.train.num_workers == 2
    assert config.model.train.warm_start is True
    assert config.model.train.mc_samples == 20
