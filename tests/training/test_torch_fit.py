"""fit_module and its helpers: class weights, validation split, early stopping, warm start and resume."""

import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from al_ray.errors import ModelError
from al_ray.models.architectures import build_module
from al_ray.training.torch_fit import (
    FitProgress,
    balanced_class_weights,
    fit_module,
    validation_split,
)

SETTINGS = {
    "epochs": 5,
    "batch_size": 16,
    "learning_rate": 0.01,
    "weight_decay": 0.0,
    "patience": 3,
    "validation_fraction": 0.25,
    "class_weights": "none",
    "seed": 7,
}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # On two busy shared cores, a CNN epoch with two torch threads took about 20
    # times as long as with one (measured once), so these tests use one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return two Gaussian blobs centred at (-2, -2) and (2, 2), labels 0 and 1."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    centres = np.where(labels[:, None] == 1, 2.0, -2.0)
    return (centres + rng.normal(size=(n, 2))).astype(np.float32), labels


def tiny_mlp(seed: int = 0, n_classes: int = 2) -> torch.nn.Module:
    return build_module("mlp", 2, n_classes, {"hidden": [8], "dropout": 0.1}, seed=seed)


def fit(module: torch.nn.Module, x: np.ndarray, y: np.ndarray, **overrides):
    return fit_module(module, x, y, n_classes=overrides.pop("n_classes", 2), **{**SETTINGS, **overrides})


def zero_weights(module: torch.nn.Module, head_bias: tuple[float, ...]) -> None:
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()
        module.head.bias.copy_(torch.tensor(head_bias))


def test_balanced_weights_table() -> None:
    # 6 labels and n_classes 4: counts (3, 2, 0, 1), so the unlabeled class 2 gets weight 0.
    labels = np.array([0, 0, 0, 1, 1, 3])
    expected = [6 / (4 * 3), 6 / (4 * 2), 0.0, 6 / (4 * 1)]
    np.testing.assert_allclose(balanced_class_weights(labels, 4), expected, rtol=1e-15)


def test_balanced_weights_even_classes() -> None:
    np.testing.assert_array_equal(balanced_class_weights(np.array([1, 0, 1, 0]), 2), [1.0, 1.0])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.array([], dtype=np.int64), r"balanced class weights need at least 1 labeled row, got 0"),
        (np.array([0, 3]), r"labels must be class indices in \[0, 3\), got values from 0 to 3"),
        (np.array([0.0, 1.0]), r"labels must be a 1-D array of integer class indices, got shape \(2,\) and dtype float64"),
    ],
)
def test_balanced_weights_rejects(labels: np.ndarray, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        balanced_class_weights(labels, 3)


def test_split_stratified_even() -> None:
    labels = np.array([0, 1] * 5)
    train, validation = validation_split(labels, 0.2, seed=0)
    assert len(validation) == 2
    # One validation row per class, as 0.2 of 5 rows each.
    assert sorted(labels[validation].tolist()) == [0, 1]
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(10))


def test_split_stratified_uneven() -> None:
    labels = np.array([0] * 8 + [1] * 2)
    for seed in range(5):
        _, validation = validation_split(labels, 0.2, seed=seed)
        # 0.2 * 8 = 1.6 rows of class 0 and 0.4 of class 1 round to (2, 0).
        assert labels[validation].tolist() == [0, 0]


def test_split_seeded() -> None:
    labels = np.arange(40) % 4
    first = validation_split(labels, 0.3, seed=1)
    again = validation_split(labels, 0.3, seed=1)
    other = validation_split(labels, 0.3, seed=2)
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[1], other[1])


def test_split_singletons_train() -> None:
    labels = np.array([0, 0, 0, 0, 1, 2])
    for seed in range(5):
        train, validation = validation_split(labels, 0.5, seed=seed)
        assert {4, 5} <= set(train.tolist())
        # round(0.5 * 6) = 3 rows wanted, but class 0 must keep one in training.
        assert len(validation) == 3
        assert set(validation.tolist()) < {0, 1, 2, 3}


def test_split_all_singletons_plain() -> None:
    train, validation = validation_split(np.array([0, 1, 2]), 0.2, seed=0)
    assert len(validation) == 1
    assert len(train) == 2


def test_split_two_rows() -> None:
    for labels in (np.array([0, 0]), np.array([0, 1])):
        train, validation = validation_split(labels, 0.9, seed=0)
        assert len(train) == 1
        assert len(validation) == 1


@pytest.mark.parametrize(
    ("labels", "fraction", "message"),
    [
        (np.array([1]), 0.2, r"needs at least 2 labeled rows \(1 to train, 1 to validate\), got 1"),
        (np.array([], dtype=np.int64), 0.2, r"needs at least 2 labeled rows .*got 0"),
        (np.array([0, 1, 0]), 0.0, r"validation fraction must be a number in \(0, 1\), got 0\.0"),
        (np.array([0, 1, 0]), 1, r"validation fraction must be a number in \(0, 1\), got 1"),
        (np.zeros((2, 2)), 0.2, r"labels must be 1-D, got shape \(2, 2\)"),
    ],
)
def test_split_rejects(labels: np.ndarray, fraction: float, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        validation_split(labels, fraction, seed=0)


@settings(deadline=None, max_examples=100)
@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=40),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32),
)
def test_split_invariants(labels: list[int], fraction: float, seed: int) -> None:
    labels = np.array(labels)
    train, validation = validation_split(labels, fraction, seed)
    assert len(train) >= 1
    assert len(validation) >= 1
    assert sorted(np.concatenate([train, validation]).tolist()) == list(range(len(labels)))
    assert len(validation) <= min(max(round(fraction * len(labels)), 1), len(labels) - 1)
    classes, counts = np.unique(labels, return_counts=True)
    if np.any(counts > 1):
        # Every class keeps a training row, so singleton classes are never held out.
        assert set(labels[train].tolist()) == set(classes.tolist())


def test_fit_learns_blobs() -> None:
    x, y = blobs(240, seed=1)
    module = tiny_mlp()
    result = fit(module, x[:160], y[:160], epochs=20, patience=20)
    test_x, test_y = x[160:], y[160:]
    with torch.no_grad():
        predictions = module(torch.from_numpy(test_x)).argmax(dim=1).numpy()
    assert (predictions == test_y).mean() > 0.9
    assert not module.training
    assert result.n_train == 120
    assert result.n_validation == 40
    assert result.epochs_run == 20
    assert result.best_val_loss < result.initial_val_loss


def test_fit_keeps_best_weights() -> None:
    x, y = blobs(60)
    module = tiny_mlp()
    seen = {}
    result = fit(module, x, y, on_epoch=lambda epoch, state, optimizer, progress: seen.update({epoch: state}))
    assert sorted(seen) == list(range(result.epochs_run))
    best = seen[result.best_epoch]
    for name, value in module.state_dict().items():
        assert torch.equal(value, best[name])
        assert torch.equal(result.best_state_dict[name], best[name])
    assert result.best_val_loss == min(result.val_losses)


def test_fit_stops_early() -> None:
    # Validation rows get mirrored features with the same labels, so every step
    # that fits the training rows raises the validation loss.
    x, y = blobs(80)
    _, validation = validation_split(y, 0.5, SETTINGS["seed"])
    x[validation] = -x[validation]
    result = fit(tiny_mlp(), x, y, validation_fraction=0.5, epochs=10, patience=2)
    assert all(later > earlier for earlier, later in zip(result.val_losses, result.val_losses[1:]))
    # Epoch 0 is the best. Epochs 1 and 2 bring no lower loss, so patience 2 stops after epoch 2.
    assert result.best_epoch == 0
    assert result.epochs_run == 3
    assert result.stopped_early


def test_fit_runs_all_epochs_without_stop() -> None:
    x, y = blobs(60)
    result = fit(tiny_mlp(), x, y, epochs=4, patience=4)
    assert result.epochs_run == 4
    assert len(result.train_losses) == 4
    assert len(result.val_losses) == 4
    assert not result.stopped_early


def test_warm_start_from_given_weights() -> None:
    x, y = blobs(40)
    module = tiny_mlp()
    # Zero weights with head bias (ln 3, 0): every row gets p = (3/4, 1/4).
    zero_weights(module, (math.log(3.0), 0.0))
    _, validation = validation_split(y, SETTINGS["validation_fraction"], SETTINGS["seed"])
    n_class_1 = int(y[validation].sum())
    n_class_0 = len(validation) - n_class_1
    expected = (n_class_0 * -math.log(0.75) + n_class_1 * -math.log(0.25)) / len(validation)
    result = fit(module, x, y, epochs=1)
    assert result.initial_val_loss == pytest.approx(expected, rel=1e-6)


def test_warm_start_uniform_loss() -> None:
    x, y = blobs(40)
    module = tiny_mlp(n_classes=3)
    zero_weights(module, (0.0, 0.0, 0.0))
    # Logits of exactly 0: cross-entropy ln 3 for every row and every class weighting.
    for class_weights in ("none", "balanced"):
        result = fit(module, x, y, n_classes=3, epochs=1, class_weights=class_weights)
        assert result.initial_val_loss == pytest.approx(math.log(3.0), rel=1e-6)
        zero_weights(module, (0.0, 0.0, 0.0))


def test_balanced_validation_loss() -> None:
    x, y = blobs(40)
    y[:30] = 0  # mostly class 0, so the balanced weights differ from 1
    module = tiny_mlp()
    zero_weights(module, (math.log(3.0), 0.0))
    weights = balanced_class_weights(y, 2)
    _, validation = validation_split(y, SETTINGS["validation_fraction"], SETTINGS["seed"])
    labels = y[validation]
    losses = np.where(labels == 0, -math.log(0.75), -math.log(0.25))
    expected = (weights[labels] * losses).sum() / weights[labels].sum()
    result = fit(module, x, y, epochs=1, class_weights="balanced")
    assert result.initial_val_loss == pytest.approx(expected, rel=1e-6)


def test_fit_seeded() -> None:
    x, y = blobs(60)
    first = fit(tiny_mlp(), x, y)
    again = fit(tiny_mlp(), x, y)
    other = fit(tiny_mlp(), x, y, seed=8)
    assert first.val_losses == again.val_losses
    for name, value in first.best_state_dict.items():
        assert torch.equal(value, again.best_state_dict[name])
    assert first.val_losses != other.val_losses


def test_fit_leaves_global_rng() -> None:
    x, y = blobs(30)
    before = torch.get_rng_state()
    fit(tiny_mlp(), x, y, epochs=2)
    assert torch.equal(torch.get_rng_state(), before)


def test_fit_tiny_labeled_set() -> None:
    x, y = blobs(10)
    result = fit(tiny_mlp(), x, y, validation_fraction=0.2)
    assert result.n_validation == 2
    assert result.n_train == 8
    two = fit(tiny_mlp(), x[:2], np.array([0, 1]), validation_fraction=0.2)
    assert two.n_validation == 1
    assert two.n_train == 1


def test_resume_matches_uninterrupted(tmp_path) -> None:
    x, y = blobs(60)
    checkpoints = {}

    def keep(epoch, state, optimizer_state, progress):
        checkpoints[epoch] = {"model": state, "optimizer": optimizer_state, "progress": progress.to_dict()}

    whole = fit(tiny_mlp(), x, y, epochs=6, patience=6, on_epoch=keep)

    # A worker restarts from the checkpoint of epoch 2, written to a file and read back
    # with weights_only=True, on a module whose own weights differ.
    path = tmp_path / "checkpoint.pt"
    torch.save(checkpoints[2], path)
    saved = torch.load(path, weights_only=True)
    module = tiny_mlp(seed=99)
    module.load_state_dict(saved["model"])
    resumed = fit(
        module,
        x,
        y,
        epochs=6,
        patience=6,
        start_epoch=3,
        optimizer_state=saved["optimizer"],
        progress=FitProgress.from_dict(saved["progress"]),
    )
    assert resumed.epochs_run == 6
    assert resumed.val_losses == whole.val_losses
    assert resumed.train_losses == whole.train_losses
    assert resumed.best_epoch == whole.best_epoch
    for name, value in whole.best_state_dict.items():
        assert torch.equal(resumed.best_state_dict[name], value)


def test_resume_after_early_stop() -> None:
    x, y = blobs(60)
    progress = FitProgress(initial_val_loss=1.0, train_losses=(0.5,), val_losses=(0.4,), stopped_early=True,
                           best_epoch=0, best_val_loss=0.4, best_state_dict=tiny_mlp(seed=3).state_dict())
    module = tiny_mlp()
    result = fit(module, x, y, epochs=5, start_epoch=1, progress=progress)
    assert result.epochs_run == 1
    assert result.stopped_early
    for name, value in tiny_mlp(seed=3).state_dict().items():
        assert torch.equal(module.state_dict()[name], value)


def test_progress_metrics() -> None:
    progress = FitProgress(initial_val_loss=0.9, train_losses=(0.8, 0.6), val_losses=(0.7, 0.75), best_epoch=0,
                           best_val_loss=0.7, epochs_without_improvement=1)
    assert progress.epochs_run == 2
    assert progress.metrics() == {
        "epoch": 1,
        "train_loss": 0.6,
        "val_loss": 0.75,
        "best_epoch": 0,
        "best_val_loss": 0.7,
        "epochs_without_improvement": 1,
        "stopped_early": False,
    }


def test_resume_needs_progress() -> None:
    x, y = blobs(20)
    message = "start_epoch 3 needs the progress saved with that checkpoint (pass progress=...)"
    with pytest.raises(ModelError, match=re.escape(message)):
        fit(tiny_mlp(), x, y, start_epoch=3)


def test_resume_rejects_mismatched_progress() -> None:
    x, y = blobs(20)
    progress = FitProgress(initial_val_loss=1.0, train_losses=(0.5, 0.4), val_losses=(0.6, 0.5))
    message = "the progress passed has run 2 epochs but start_epoch is 3"
    with pytest.raises(ModelError, match=re.escape(message)):
        fit(tiny_mlp(), x, y, start_epoch=3, progress=progress)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"epochs": 0}, r"epochs must be an integer >= 1, got 0"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"patience": 1.5}, r"patience must be an integer >= 1, got 1\.5"),
        ({"learning_rate": 0.0}, r"learning_rate must be > 0, got 0\.0"),
        ({"weight_decay": -1.0}, r"weight_decay must be >= 0, got -1\.0"),
        ({"class_weights": "auto"}, r"class_weights must be 'none' or 'balanced', got 'auto'"),
        ({"world_size": 2, "world_rank": 2}, r"world_rank must be an integer in \[0, 2\), got 2"),
        ({"n_classes": 1}, r"a classifier needs at least 2 classes, got n_classes 1"),
    ],
)
def test_fit_rejects_settings(overrides: dict, message: str) -> None:
    x, y = blobs(20)
    with pytest.raises(ModelError, match=message):
        fit(tiny_mlp(), x, y, **overrides)


def test_fit_rejects_data() -> None:
    x, y = blobs(20)
    with pytest.raises(ModelError, match=r"training needs at least 2 labeled rows \(1 to train, 1 to validate\), got 1"):
        fit(tiny_mlp(), x[:1], y[:1])
    with pytest.raises(ModelError, match=r"got \(20, 2\) for 19 labels"):
        fit(tiny_mlp(), x, y[:19])
    x[3, 1] = np.nan
    with pytest.raises(ModelError, match=r"features contain NaN or inf \(labeled row 3\)"):
        fit(tiny_mlp(), x, y)


def test_fit_rejects_divergence() -> None:
    x, y = blobs(20)
    x *= 1e30
    with pytest.raises(ModelError, match=r"the (initial validation|training|validation) loss is (nan|inf)"):
        fit(tiny_mlp(), x, y, learning_rate=1e10)
