"""Train a classifier network on the labeled set: seeded split, Adam, early stopping, resumable.

Pure torch and numpy, with no Ray, so the same function runs in a test, in the
driver and in each Ray Train worker. A seeded part of the labeled rows is held
out, and training stops once the validation loss has not decreased for
``patience`` epochs. The weights of the epoch with the lowest validation loss
are kept.

Every random choice takes a seed derived from ``seed`` and the epoch number:
the split, the order of the rows in each epoch and the dropout masks. A worker
that restarts from the checkpoint of epoch ``e`` (weights, optimizer state and
:class:`FitProgress`, all handed to ``on_epoch``) therefore continues exactly
as the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from al_ray.errors import ModelError
from al_ray.seeding import derive_seed

__all__ = [
    "FitProgress",
    "FitResult",
    "OnEpoch",
    "balanced_class_weights",
    "fit_module",
    "validation_split",
]

logger = logging.getLogger(__name__)

_VALIDATION_CHUNK_ROWS = 1024


@dataclasses.dataclass(frozen=True)
class FitProgress:
    """Training state after some epochs: what a checkpoint needs besides the weights and the optimizer.

    A new object is made after every epoch, so one handed to ``on_epoch``
    never changes afterwards.
    """

    initial_val_loss: float
    """Validation loss of the weights ``fit_module`` started from, before any update."""

    train_losses: tuple[float, ...] = ()
    """Mean (class-weighted) training loss of each epoch run, on this worker's rows."""

    val_losses: tuple[float, ...] = ()
    """Mean (class-weighted) validation loss after each epoch run."""

    best_epoch: int = -1
    """0-based epoch with the lowest validation loss, -1 before the first epoch."""

    best_val_loss: float = math.inf

    best_state_dict: dict[str, torch.Tensor] | None = dataclasses.field(default=None, repr=False)
    """CPU copy of the weights after ``best_epoch``."""

    epochs_without_improvement: int = 0
    stopped_early: bool = False

    @property
    def epochs_run(self) -> int:
        return len(self.train_losses)

    def metrics(self) -> dict[str, float | int | bool]:
        """Return the latest epoch's figures as scalars, ready for a metrics report."""
        return {
            "epoch": self.epochs_run - 1,
            "train_loss": self.train_losses[-1] if self.train_losses else math.nan,
            "val_loss": self.val_losses[-1] if self.val_losses else math.nan,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "epochs_without_improvement": self.epochs_without_improvement,
            "stopped_early": self.stopped_early,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the state as plain lists, numbers and tensors, which ``torch.load(weights_only=True)`` reads."""
        state = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        state["train_losses"] = list(self.train_losses)
        state["val_losses"] = list(self.val_losses)
        state["best_state_dict"] = None if self.best_state_dict is None else dict(self.best_state_dict)
        return state

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> FitProgress:
        """Rebuild the progress saved by :meth:`to_dict`."""
        values = dict(state)
        values["train_losses"] = tuple(float(loss) for loss in values["train_losses"])
        values["val_losses"] = tuple(float(loss) for loss in values["val_losses"])
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit_module`."""

    best_state_dict: dict[str, torch.Tensor] = dataclasses.field(repr=False)
    """CPU copy of the weights with the lowest validation loss, which are also loaded into the module."""

    best_epoch: int
    best_val_loss: float
    initial_val_loss: float
    epochs_run: int
    """Epochs trained in total, including those before a resume."""

    train_losses: tuple[float, ...]
    val_losses: tuple[float, ...]
    stopped_early: bool
    n_train: int
    n_validation: int


OnEpoch = Callable[[int, dict[str, torch.Tensor], dict[str, Any], FitProgress], None]
"""``on_epoch(epoch, state_dict, optimizer_state, progress)``, called after every epoch.

``state_dict`` is a CPU copy of the current weights, ``optimizer_state`` a copy
of the Adam state and ``epoch`` is 0-based. To resume, load the weights into
the module and pass ``start_epoch=epoch + 1``, ``optimizer_state`` and
``progress`` back to :func:`fit_module`.
"""


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Compute loss weights ``n_labeled / (n_classes * count)`` per class, shape ``(n_classes,)``, float64.

    A class with no labeled row gets weight 0 instead of a division by zero.
    No row carries that class, so the weight never multiplies a loss term.
    With the weighted mean of ``CrossEntropyLoss`` only the ratios between
    weights matter, so counting unlabeled classes in ``n_classes`` scales
    every weight alike and changes no loss.

    Raises
    ------
    ModelError
        For no labels, or a label outside ``[0, n_classes)``.
    """
    labels = _checked_labels(labels, n_classes)
    if labels.size == 0:
        raise ModelError("balanced class weights need at least 1 labeled row, got 0")
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes, dtype=np.float64)
    seen = counts > 0
    weights[seen] = labels.size / (n_classes * counts[seen])
    return weights


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split the labeled rows into training and validation positions, seeded.

    The validation set has ``round(fraction * n)`` rows (Python's ``round``,
    halves to even), at least 1 and at most ``n - 1``. Each class with 2 or
    more rows is held out about in proportion to its count and keeps at least
    one row in training. A class with a single row always goes to training.
    These rules leave fewer validation rows than requested when every other
    row is needed in training. Only when every class has a single row is the
    split plain random.

    Parameters
    ----------
    labels : array of shape (n,)
        Class label of each labeled row, any comparable dtype.
    fraction : float
        Share of the rows to hold out, in ``(0, 1)``.
    seed : int

    Returns
    -------
    train_positions, validation_positions : int64 arrays
        Sorted positions into ``labels`` (not row ids), together covering every row once.

    Raises
    ------
    ModelError
        For fewer than 2 rows or a fraction outside ``(0, 1)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ModelError(f"labels must be 1-D, got shape {labels.shape}")
    n_rows = labels.shape[0]
    if n_rows < 2:
        raise ModelError(
            f"training with a validation split needs at least 2 labeled rows (1 to train, 1 to validate), "
            f"got {n_rows}; label more rows first"
        )
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0.0 < fraction < 1.0:
        raise ModelError(f"validation fraction must be a number in (0, 1), got {fraction!r}")

    n_validation = min(max(round(fraction * n_rows), 1), n_rows - 1)
    rng = np.random.default_rng(seed)
    _, class_of_row, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    if np.all(class_counts == 1):
        validation = rng.permutation(n_rows)[:n_validation]
    else:
        # Rank the rows of each class in a random order. Taking the rows with the
        # smallest (rank + 0.5) / count takes every class in proportion to its
        # count, and the last-ranked row of each class stays in training.
        shuffled = rng.permutation(n_rows)
        by_class = shuffled[np.argsort(class_of_row[shuffled], kind="stable")]
        class_starts = np.concatenate([[0], np.cumsum(class_counts)[:-1]])
        rank = np.empty(n_rows, dtype=np.int64)
        rank[by_class] = np.arange(n_rows) - class_starts[class_of_row[by_class]]
        row_counts = class_counts[class_of_row]
        candidates = np.flatnonzero(rank < row_counts - 1)
        keys = (rank[candidates] + 0.5) / row_counts[candidates]
        tie_breaks = rng.random(candidates.size)
        validation = candidates[np.lexsort((tie_breaks, keys))][:n_validation]

    is_validation = np.zeros(n_rows, dtype=bool)
    is_validation[validation] = True
    return np.flatnonzero(~is_validation).astype(np.int64), np.flatnonzero(is_validation).astype(np.int64)


def fit_module(
    module: nn.Module,
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    validation_fraction: float,
    class_weights: str = "none",
    seed: int,
    on_epoch: OnEpoch | None = None,
    start_epoch: int = 0,
    optimizer_state: Mapping[str, Any] | None = None,
    progress: FitProgress | None = None,
    world_rank: int = 0,
    world_size: int = 1,
) -> FitResult:
    """Train ``module`` in place from its current weights, with early stopping on a validation split.

    Training runs epochs ``start_epoch`` to ``epochs - 1`` with Adam and the
    cross-entropy loss, optionally class-weighted. It stops early once
    ``patience`` epochs in a row bring no lower validation loss. On return the
    module contains the weights of the best epoch, in eval mode.

    Parameters
    ----------
    module : nn.Module
        A network that maps ``(n, n_features)`` float32 rows to ``(n,
        n_classes)`` logits, possibly wrapped in ``DistributedDataParallel``.
        Its current weights are the starting point (a warm start).
    features : array of shape (n_labeled, n_features)
        Features of the labeled rows, float32 or float64.
    labels : int array of shape (n_labeled,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
    epochs : int
        Total epochs, counting those run before a resume.
    batch_size : int
        Rows per optimizer step on each worker.
    learning_rate, weight_decay : float
        Adam settings.
    patience : int
        Epochs without a lower validation loss before stopping.
    validation_fraction : float
        Share of the labeled rows held out (see :func:`validation_split`).
    class_weights : {"none", "balanced"}
        ``"balanced"`` weights the loss by :func:`balanced_class_weights`,
        computed on every labeled row. The validation loss uses the same weights.
    seed : int
        The split is ``validation_split(labels, validation_fraction, seed)``.
        The row order and the dropout masks of each epoch take seeds derived
        from ``seed`` and the epoch number.
    on_epoch : callable, optional
        Called after each epoch; see :data:`OnEpoch`.
    start_epoch, optimizer_state, progress
        Resume state saved by ``on_epoch``. ``progress`` is required when
        ``start_epoch > 0`` and must have run ``start_epoch`` epochs.
    world_rank, world_size : int
        For data-parallel training: each of ``world_size`` workers trains on
        every ``world_size``-th row of the epoch's shuffled order, padded by
        wrapping around so every worker takes the same number of steps. Every
        worker computes the validation loss on the whole validation set, so all
        workers reach the same early-stopping decision as long as their losses
        agree bit for bit. NOTE: the unit tests run one worker only.

    Returns
    -------
    FitResult

    Raises
    ------
    ModelError
        For invalid settings or data, fewer than 2 labeled rows, a resume
        state that does not match ``start_epoch``, and a non-finite loss.
    """
    _check_settings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        patience=patience,
        class_weights=class_weights,
        start_epoch=start_epoch,
        world_rank=world_rank,
        world_size=world_size,
    )
    features, labels = _checked_data(features, labels, n_classes)
    if start_epoch > 0 and progress is None:
        raise ModelError(
            f"start_epoch {start_epoch} needs the progress saved with that checkpoint "
            "(pass progress=...), so early stopping continues from the best epoch so far"
        )
    if progress is not None and progress.epochs_run != start_epoch:
        raise ModelError(
            f"the progress passed has run {progress.epochs_run} epochs but start_epoch is {start_epoch}; "
            "pass the progress saved with the same checkpoint as the weights"
        )

    network = _unwrap(module)
    device = next(network.parameters()).device
    train_positions, validation_positions = validation_split(labels, validation_fraction, seed)
    # torch.tensor copies, so read-only arrays from the Ray object store are fine.
    x_all = torch.tensor(features, dtype=torch.float32, device=device)
    y_all = torch.tensor(labels, device=device)
    train_index = torch.from_numpy(train_positions).to(device)
    validation_index = torch.from_numpy(validation_positions).to(device)
    x_train, y_train = x_all[train_index], y_all[train_index]
    x_validation, y_validation = x_all[validation_index], y_all[validation_index]
    loss_weights = (
        torch.from_numpy(balanced_class_weights(labels, n_classes)).to(device)
        if class_weights == "balanced"
        else torch.ones(n_classes, dtype=torch.float64, device=device)
    )

    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    if progress is None:
        initial = _validation_loss(module, x_validation, y_validation, loss_weights)
        _check_finite(initial, "initial validation", -1)
        progress = FitProgress(initial_val_loss=initial)

    for epoch in range(start_epoch, epochs):
        if progress.stopped_early:
            break
        train_loss = _train_epoch(
            module,
            optimizer,
            x_train,
            y_train,
            loss_weights,
            batch_size=batch_size,
            order_seed=derive_seed(seed, "torch-fit-order", epoch),
            dropout_seed=derive_seed(seed, f"torch-fit-dropout-{world_rank}", epoch),
            world_rank=world_rank,
            world_size=world_size,
        )
        _check_finite(train_loss, "training", epoch)
        val_loss = _validation_loss(module, x_validation, y_validation, loss_weights)
        _check_finite(val_loss, "validation", epoch)
        progress = _after_epoch(progress, network, train_loss, val_loss, patience)
        logger.debug(
            "epoch %d: train_loss=%.5f val_loss=%.5f best_epoch=%d",
            epoch,
            train_loss,
            val_loss,
            progress.best_epoch,
        )
        if on_epoch is not None:
            on_epoch(epoch, _cpu_copy(network.state_dict()), _optimizer_copy(optimizer), progress)

    best = progress.best_state_dict if progress.best_state_dict is not None else _cpu_copy(network.state_dict())
    network.load_state_dict(best)
    module.eval()
    if progress.stopped_early:
        logger.info(
            "stopped early after epoch %d: no lower validation loss for %d epochs; best epoch %d (%.5f)",
            progress.epochs_run - 1,
            patience,
            progress.best_epoch,
            progress.best_val_loss,
        )
    return FitResult(
        best_state_dict=best,
        best_epoch=progress.best_epoch,
        best_val_loss=progress.best_val_loss,
        initial_val_loss=progress.initial_val_loss,
        epochs_run=progress.epochs_run,
        train_losses=progress.train_losses,
        val_losses=progress.val_losses,
        stopped_early=progress.stopped_early,
        n_train=int(train_positions.size),
        n_validation=int(validation_positions.size),
    )


def _train_epoch(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    loss_weights: torch.Tensor,
    *,
    batch_size: int,
    order_seed: int,
    dropout_seed: int,
    world_rank: int,
    world_size: int,
) -> float:
    """Run one epoch of Adam steps and return the mean weighted training loss of this worker's rows."""
    n_train = x_train.shape[0]
    # The order is drawn on the CPU so it is the same on every device and worker.
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(order_seed)).numpy()
    per_worker = math.ceil(n_train / world_size)
    mine = torch.from_numpy(np.resize(order, per_worker * world_size)[world_rank::world_size])
    mine = mine.to(x_train.device)
    weights32 = loss_weights.to(torch.float32)

    module.train()
    loss_sum = 0.0
    weight_sum = 0.0
    devices = [x_train.device] if x_train.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(dropout_seed)
        for start in range(0, mine.shape[0], batch_size):
            rows = mine[start : start + batch_size]
            targets = y_train[rows]
            logits = module(x_train[rows])
            row_losses = functional.cross_entropy(logits, targets, weight=weights32, reduction="none")
            row_weights = weights32[targets]
            loss = row_losses.sum() / row_weights.sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(row_losses.detach().double().sum())
            weight_sum += float(row_weights.double().sum())
    return loss_sum / weight_sum


def _validation_loss(
    module: nn.Module, x_validation: torch.Tensor, y_validation: torch.Tensor, loss_weights: torch.Tensor
) -> float:
    """Return the weighted mean cross-entropy on the validation rows, with dropout off, in float64."""
    module.eval()
    loss_sum = 0.0
    weight_sum = 0.0
    with torch.no_grad():
        for start in range(0, x_validation.shape[0], _VALIDATION_CHUNK_ROWS):
            targets = y_validation[start : start + _VALIDATION_CHUNK_ROWS]
            logits = module(x_validation[start : start + _VALIDATION_CHUNK_ROWS]).double()
            loss_sum += float(functional.cross_entropy(logits, targets, weight=loss_weights, reduction="sum"))
            weight_sum += float(loss_weights[targets].sum())
    return loss_sum / weight_sum


def _after_epoch(
    progress: FitProgress, network: nn.Module, train_loss: float, val_loss: float, patience: int
) -> FitProgress:
    """Return the progress with one more epoch recorded, the best weights updated on a lower loss."""
    epoch = progress.epochs_run
    changes: dict[str, Any] = {
        "train_losses": (*progress.train_losses, train_loss),
        "val_losses": (*progress.val_losses, val_loss),
    }
    if val_loss < progress.best_val_loss:
        changes.update(
            best_epoch=epoch,
            best_val_loss=val_loss,
            best_state_dict=_cpu_copy(network.state_dict()),
            epochs_without_improvement=0,
        )
    else:
        waited = progress.epochs_without_improvement + 1
        changes.update(epochs_without_improvement=waited, stopped_early=waited >= patience)
    return dataclasses.replace(progress, **changes)


def _unwrap(module: nn.Module) -> nn.Module:
    # DistributedDataParallel prefixes every parameter name with "module.";
    # state dicts are taken from the inner network so checkpoints load anywhere.
    if isinstance(module, nn.parallel.DistributedDataParallel):
        return module.module
    return module


def _cpu_copy(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach().to("cpu", copy=True) for name, value in state_dict.items()}


def _optimizer_copy(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    # Optimizer.load_state_dict moves the tensors back to each parameter's device.
    state = optimizer.state_dict()
    per_parameter = {
        key: {name: _cpu_value(value) for name, value in entry.items()} for key, entry in state["state"].items()
    }
    groups = [dict(group, params=list(group["params"])) for group in state["param_groups"]]
    return {"state": per_parameter, "param_groups": groups}


def _cpu_value(value: Any) -> Any:
    return value.detach().to("cpu", copy=True) if isinstance(value, torch.Tensor) else value


def _check_finite(loss: float, name: str, epoch: int) -> None:
    if not math.isfinite(loss):
        where = "before training" if epoch < 0 else f"in epoch {epoch}"
        raise ModelError(
            f"the {name} loss is {loss} {where}; training diverged or the features contain "
            "extreme values. Lower model.train.learning_rate or standardize the features"
        )


def _checked_labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ModelError(
            f"labels must be a 1-D array of integer class indices, got shape {labels.shape} "
            f"and dtype {labels.dtype}"
        )
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ModelError(
            f"labels must be class indices in [0, {n_classes}), got values from {labels.min()} to {labels.max()}"
        )
    return labels


def _checked_data(features: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if _as_count(n_classes) < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got n_classes {n_classes!r}")
    labels = _checked_labels(labels, n_classes)
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ModelError(
            f"features must have shape (n_labeled, n_features) with one row per label, "
            f"got {features.shape} for {labels.shape[0]} labels"
        )
    if labels.shape[0] < 2:
        raise ModelError(
            f"training needs at least 2 labeled rows (1 to train, 1 to validate), got {labels.shape[0]}; "
            "label more rows first"
        )
    if not np.all(np.isfinite(features)):
        row = int(np.argwhere(~np.isfinite(features))[0][0])
        raise ModelError(f"features contain NaN or inf (labeled row {row}); clean the data source")
    return features, labels


def _as_count(value: Any) -> int:
    try:
        return -1 if isinstance(value, bool) else operator.index(value)
    except TypeError:
        return -1


def _check_settings(
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    patience: int,
    class_weights: str,
    start_epoch: int,
    world_rank: int,
    world_size: int,
) -> None:
    for name, value, minimum in (
        ("epochs", epochs, 1),
        ("batch_size", batch_size, 1),
        ("patience", patience, 1),
        ("start_epoch", start_epoch, 0),
        ("world_size", world_size, 1),
    ):
        if _as_count(value) < minimum:
            raise ModelError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if not 0 <= _as_count(world_rank) < world_size:
        raise ModelError(f"world_rank must be an integer in [0, {world_size}), got {world_rank!r}")
    if not learning_rate > 0:
        raise ModelError(f"learning_rate must be > 0, got {learning_rate!r}")
    if not weight_decay >= 0:
        raise ModelError(f"weight_decay must be >= 0, got {weight_decay!r}")
    if class_weights not in ("none", "balanced"):
        raise ModelError(f"class_weights must be 'none' or 'balanced', got {class_weights!r}")
