"""Ray Train retraining: two workers, checkpoints, a killed worker, warm start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from al_ray.config import TorchTrainConfig
from al_ray.data import load_shipped
from al_ray.models.architectures import build_module
from al_ray.training.torch_trainers import DriverTorchTrainer, RayTrainTorchTrainer

MLP = {"hidden": [32], "dropout": 0.1}


@pytest.fixture(scope="module")
def digits():
    data = load_shipped("mnist_test")
    return data.features[:240], data.labels[:240], data.classes


def _trainer(tmp_path, classes, **train):
    settings = {"epochs": 4, "batch_size": 32, "patience": 10, "num_workers": 2, "cpus_per_worker": 0.5, **train}
    return RayTrainTorchTrainer(
        "mlp", MLP, 784, classes, TorchTrainConfig(**settings), 7, storage_path=tmp_path / "ray_train"
    )


def _same_weights(first, second):
    return all(torch.equal(first[key], second[key]) for key in first)


@pytest.fixture(scope="module")
def plain_fit(ray_local, tmp_path_factory, digits):
    """Fit once without failures: the checkpoint test reads it, the killed-worker test compares with it."""
    features, labels, classes = digits
    folder = tmp_path_factory.mktemp("plain")
    trainer = _trainer(folder, classes)
    model = trainer.fit(features, labels, round_index=1)
    return folder, trainer, model


def test_two_workers_checkpoint_each_epoch(plain_fit, digits):
    features, labels, _ = digits
    folder, trainer, model = plain_fit

    checkpoints = sorted(path.name for path in (folder / "ray_train" / "round_0001").glob("epoch_*"))
    # Two checkpoints are kept (num_to_keep=2): the last two epochs.
    assert checkpoints == ["epoch_0002", "epoch_0003"]
    assert trainer.last_report.epochs_run == 4
    assert trainer.last_report.resumed_from_epoch == 0
    assert 0 < trainer.last_report.train_seconds < trainer.last_report.seconds
    assert (model.predict(features) == labels).mean() > 0.5


def test_killed_worker_resumes_from_checkpoint(ray_local, tmp_path, digits, plain_fit):
    features, labels, classes = digits
    _, _, plain = plain_fit
    crashing = _trainer(tmp_path / "crash", classes, max_failures=1)
    marker = tmp_path / "crashed"
    crashing._crash_once = {"rank": 1, "epoch": 1, "marker": str(marker)}

    model = crashing.fit(features, labels, round_index=1)

    assert marker.exists()
    # The worker died after reporting epoch 1. Whether the controller had
    # recorded that checkpoint or only epoch 0's depends on timing, but the
    # retry never starts from scratch.
    assert crashing.last_report.resumed_from_epoch in (1, 2)
    assert crashing.last_report.epochs_run == 4
    # Every epoch's row order and dropout derive from (seed, epoch), so the
    # resumed run ends with the same weights as the uninterrupted one.
    assert _same_weights(model.state_dict(), plain.state_dict())


def test_warm_start_begins_from_previous_weights(tmp_path, digits):
    features, labels, classes = digits
    previous = DriverTorchTrainer("mlp", MLP, 784, classes, TorchTrainConfig(epochs=2), 7).fit(
        features, labels, round_index=1
    )
    # A learning rate this small leaves the weights where training began.
    frozen = {"epochs": 1, "learning_rate": 1e-30}
    warm = DriverTorchTrainer("mlp", MLP, 784, classes, TorchTrainConfig(**frozen), 7)
    cold = DriverTorchTrainer("mlp", MLP, 784, classes, TorchTrainConfig(**frozen, warm_start=False), 7)

    warm_model = warm.fit(features, labels, round_index=2, previous=previous)
    cold_model = cold.fit(features, labels, round_index=2, previous=previous)

    assert _same_weights(warm_model.state_dict(), previous.state_dict())
    fresh = build_module("mlp", 784, len(classes), MLP, seed=cold._init_seed(2)).state_dict()
    assert _same_weights(cold_model.state_dict(), fresh)
    assert not _same_weights(cold_model.state_dict(), previous.state_dict())


def test_unknown_architecture_fails_before_training(tmp_path, digits):
    from al_ray.errors import ModelError

    with pytest.raises(ModelError, match="unknown architecture 'resnet'"):
        DriverTorchTrainer("resnet", {}, 784, digits[2], TorchTrainConfig(), 7)
