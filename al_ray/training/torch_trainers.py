"""Retrain a torch classifier each round: with Ray Train's TorchTrainer, or in the driver.

Both trainers run :func:`~al_ray.training.torch_fit.fit_module` and return a
:class:`~al_ray.models.torch_adapter.TorchClassifier` holding the weights of
the epoch with the lowest validation loss. With ``warm_start`` a round begins
from the previous round's weights; otherwise from fresh weights drawn from
the round's seed.

On Ray Train every worker trains data-parallel on its share of each epoch's
rows. Rank 0 writes a checkpoint after every epoch (weights, Adam state and
the early-stopping state), and a worker failure restarts the worker group
from the latest checkpoint, up to ``max_failures`` times.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from al_ray.config import TorchTrainConfig
from al_ray.errors import ModelError
from al_ray.seeding import derive_seed

__all__ = ["DriverTorchTrainer", "RayTrainTorchTrainer", "TorchFitReport"]

logger = logging.getLogger(__name__)

_CHECKPOINT_FILE = "state.pt"


@dataclass(frozen=True)
class TorchFitReport:
    """Timing and outcome of one round's training."""

    seconds: float
    """Wall time of the whole fit, start-up included."""

    train_seconds: float
    """Time inside the training loop, summed over the epochs of this attempt on rank 0."""

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    resumed_from_epoch: int
    """First epoch of the last attempt: 0 unless a failure restarted training from a checkpoint."""


class _TorchTrainerBase:
    """Base of both trainers: the model spec, the seeds and the warm-start weights."""

    def __init__(
        self,
        architecture: str,
        params: dict[str, Any],
        n_features: int,
        classes: Sequence[str],
        train: TorchTrainConfig,
        root_seed: int,
    ) -> None:
        from al_ray.models.architectures import build_module

        self.architecture = architecture
        self.params = dict(params)
        self.n_features = int(n_features)
        self.classes = tuple(classes)
        self.train = train
        self.root_seed = root_seed
        # Built once here so an unknown architecture or parameter, or a feature
        # count the network cannot take, fails before any output is written.
        build_module(architecture, self.n_features, len(self.classes), self.params, seed=0)
        self.last_report: TorchFitReport | None = None

    def _start_state(self, previous) -> dict | None:
        """Return the weights a round starts from: the previous round's with warm start, else None.

        The previous model comes from the loop, which loads it from its file
        on resume, so a resumed run warm-starts like an uninterrupted one. A
        label-prior model (a cold start) has no weights.
        """
        if not self.train.warm_start or not hasattr(previous, "state_dict"):
            return None
        return previous.state_dict()

    def _fit_settings(self, round_index: int) -> dict[str, Any]:
        train = self.train
        return {
            "n_classes": len(self.classes),
            "epochs": train.epochs,
            "batch_size": train.batch_size,
            "learning_rate": train.learning_rate,
            "weight_decay": train.weight_decay,
            "patience": train.patience,
            "validation_fraction": train.validation_fraction,
            "class_weights": train.class_weights,
            "seed": derive_seed(self.root_seed, "torch-fit", round_index),
        }

    def _classifier(self, state_dict: dict, round_index: int):
        from al_ray.models.torch_adapter import TorchClassifier

        return TorchClassifier(
            self.architecture,
            self.params,
            self.n_features,
            self.classes,
            state_dict,
            mc_samples=self.train.mc_samples,
            mc_seed=derive_seed(self.root_seed, "mc-dropout", round_index),
        )

    def _init_seed(self, round_index: int) -> int:
        return derive_seed(self.root_seed, "torch-init", round_index)

    def close(self) -> None:
        """Release nothing: training holds no processes between rounds."""


class DriverTorchTrainer(_TorchTrainerBase):
    """Train in the driver process: for laptops and tests, where Ray Train's start-up dominates."""

    needs_ray = False

    def fit(self, features: np.ndarray, labels: np.ndarray, round_index: int, previous=None):
        from al_ray.models.architectures import build_module
        from al_ray.training.torch_fit import fit_module

        started = time.perf_counter()
        module = build_module(
            self.architecture, self.n_features, len(self.classes), self.params, seed=self._init_seed(round_index)
        )
        start_state = self._start_state(previous)
        if start_state is not None:
            module.load_state_dict(start_state)
        result = fit_module(module, features, labels, **self._fit_settings(round_index))
        seconds = time.perf_counter() - started
        self.last_report = TorchFitReport(
            seconds, seconds, result.epochs_run, result.best_epoch, result.best_val_loss, 0
        )
        return self._classifier(result.best_state_dict, round_index)


class RayTrainTorchTrainer(_TorchTrainerBase):
    """Train with Ray Train's ``TorchTrainer``: ``num_workers`` data-parallel workers per round.

    Parameters
    ----------
    architecture, params, n_features, classes
        The network, as for :class:`~al_ray.models.torch_adapter.TorchClassifier`.
    train : TorchTrainConfig
        Epochs, early stopping, workers and resources.
    root_seed : int
        The run's root seed; each round's seeds derive from it.
    storage_path : path
        Where Ray Train keeps each round's checkpoints (``round_NNNN/``).
        NOTE: a multi-node cluster needs a path every node can reach.
    """

    needs_ray = True

    def __init__(self, *args: Any, storage_path: str | Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.storage_path = Path(storage_path).resolve()
        self._crash_once: dict[str, Any] | None = None

    def fit(self, features: np.ndarray, labels: np.ndarray, round_index: int, previous=None):
        import ray
        from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        started = time.perf_counter()
        train = self.train
        data = ray.put((np.ascontiguousarray(features, dtype=np.float32), np.asarray(labels, dtype=np.int64)))
        start_state = self._start_state(previous)
        loop_config = {
            # References sit in lists so Ray Train passes them through unresolved.
            "data": [data],
            "start_state": [ray.put(start_state)] if start_state is not None else None,
            "architecture": self.architecture,
            "params": self.params,
            "n_features": self.n_features,
            "init_seed": self._init_seed(round_index),
            "fit": self._fit_settings(round_index),
            "threads": max(1, int(train.cpus_per_worker)),
            "crash_once": self._crash_once,
        }
        resources = {"CPU": train.cpus_per_worker}
        if train.use_gpu:
            resources["GPU"] = 1
        trainer = TorchTrainer(
            _train_worker,
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(
                num_workers=train.num_workers, use_gpu=train.use_gpu, resources_per_worker=resources
            ),
            run_config=RunConfig(
                name=f"round_{round_index:04d}",
                storage_path=str(self.storage_path),
                failure_config=FailureConfig(max_failures=train.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=2),
            ),
        )
        try:
            result = trainer.fit()
        except Exception as exc:
            raise ModelError(
                f"Ray Train failed in round {round_index} after {train.max_failures} retries: {exc}. "
                f"Checkpoints are in {self.storage_path / f'round_{round_index:04d}'}; "
                "raise model.train.max_failures, or check the workers' logs"
            ) from exc
        if result.checkpoint is None:
            raise ModelError(f"Ray Train reported no checkpoint in round {round_index}; no epoch completed")
        saved = _load_checkpoint(result.checkpoint)
        best_state = saved["progress"]["best_state_dict"]
        metrics = result.metrics or {}
        self.last_report = TorchFitReport(
            seconds=time.perf_counter() - started,
            train_seconds=float(metrics.get("train_seconds", 0.0)),
            epochs_run=len(saved["progress"]["train_losses"]),
            best_epoch=int(saved["progress"]["best_epoch"]),
            best_val_loss=float(saved["progress"]["best_val_loss"]),
            resumed_from_epoch=int(metrics.get("resumed_from_epoch", 0)),
        )
        logger.info(
            "round %d: Ray Train ran %d epochs (best %d) in %.2f s, %.2f s of it training",
            round_index, self.last_report.epochs_run, self.last_report.best_epoch,
            self.last_report.seconds, self.last_report.train_seconds,
        )
        return self._classifier(best_state, round_index)


def _load_checkpoint(checkpoint) -> dict[str, Any]:
    import torch

    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / _CHECKPOINT_FILE, weights_only=True)


def _train_worker(config: dict[str, Any]) -> None:
    """The function every Ray Train worker runs: resume from a checkpoint if any, then fit."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from al_ray.models.architectures import build_module
    from al_ray.training.torch_fit import FitProgress, fit_module

    # Ray sets OMP_NUM_THREADS=1 in workers; torch's intra-op pool follows the reserved CPUs.
    torch.set_num_threads(config["threads"])
    features, labels = ray.get(config["data"][0])
    context = ray.train.get_context()
    rank, world_size = context.get_world_rank(), context.get_world_size()
    fit = config["fit"]
    module = build_module(
        config["architecture"], config["n_features"], fit["n_classes"], config["params"], seed=config["init_seed"]
    )
    if config["start_state"] is not None:
        module.load_state_dict(ray.get(config["start_state"][0]))

    resume: dict[str, Any] = {}
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        saved = _load_checkpoint(checkpoint)
        module.load_state_dict(saved["model"])
        resume = {
            "start_epoch": saved["epoch"] + 1,
            "optimizer_state": saved["optimizer"],
            "progress": FitProgress.from_dict(saved["progress"]),
        }
    resumed_from = resume.get("start_epoch", 0)
    module = ray.train.torch.prepare_model(module)
    started = time.perf_counter()

    def on_epoch(epoch: int, state_dict, optimizer_state, progress: FitProgress) -> None:
        metrics = {
            **progress.metrics(),
            "resumed_from_epoch": resumed_from,
            "train_seconds": time.perf_counter() - started,
        }
        if rank == 0:
            with tempfile.TemporaryDirectory() as folder:
                state = {"model": state_dict, "optimizer": optimizer_state, "progress": progress.to_dict(), "epoch": epoch}
                torch.save(state, Path(folder) / _CHECKPOINT_FILE)
                ray.train.report(
                    metrics,
                    checkpoint=ray.train.Checkpoint.from_directory(folder),
                    checkpoint_dir_name=f"epoch_{epoch:04d}",
                )
        else:
            ray.train.report(metrics)
        _maybe_crash(config["crash_once"], rank, epoch)

    fit_module(module, features, labels, **fit, on_epoch=on_epoch, world_rank=rank, world_size=world_size, **resume)


def _maybe_crash(crash_once: dict[str, Any] | None, rank: int, epoch: int) -> None:
    """Kill this worker once, after the given epoch's report: the failure-recovery tests' hook."""
    if crash_once is None or crash_once["rank"] != rank or crash_once["epoch"] != epoch:
        return
    marker = Path(crash_once["marker"])
    if marker.exists():
        return
    marker.write_text(str(os.getpid()), encoding="utf-8")
    # Ray Train's controller records a reported checkpoint at its next poll,
    # every 0.2 s here. Waiting past a few polls makes the retry resume from
    # this epoch's checkpoint rather than from an earlier one.
    time.sleep(2.0)
    os._exit(1)
