"""One face for torch classifiers: probabilities, embeddings and an MC-dropout committee.

:class:`TorchClassifier` gives a network from :mod:`al_ray.models.architectures`
the methods that scoring reads from a scikit-learn model or a committee. Its
``committee_proba`` returns one probability table per MC-dropout sample, so
every committee strategy (BALD, vote entropy, variation ratios, ...) runs on a
single network. The masks are consistent: a given MC sample applies the same
mask to a row whatever batch the row is scored in, so a row's utility does not
depend on how the pool was split into blocks.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from al_ray.errors import ModelError
from al_ray.models.architectures import ClassifierModule, build_module, consistent_masks
from al_ray.strategies.expected_change import gradient_embedding_factors

__all__ = ["TorchClassifier"]

logger = logging.getLogger(__name__)

# Dense gradient embeddings above this many values (256 MiB of float64) are
# rejected. Strategies use the factorized form, which needs no such array.
_MAX_DENSE_GRADIENT_VALUES = 2**25


class TorchClassifier:
    """A torch network over a fixed list of classes, scored in eval mode on the CPU.

    Parameters
    ----------
    architecture : str
        Name of the network in ``al_ray.models.architectures.ARCHITECTURES``.
    params : mapping
        The architecture's parameters.
    n_features : int
        Columns of a feature row.
    classes : sequence of str
        The full class list. Column ``j`` of every probability table is ``classes[j]``.
    state_dict : mapping of str to tensor or ndarray, optional
        Trained weights. Without them the weights are freshly initialized from
        ``init_seed``.
    mc_samples : int
        MC-dropout samples per row in :meth:`committee_proba`, at least 2.
    mc_seed : int
        Seed of the MC-dropout masks. Derive it from the run's root seed so
        that every scoring actor draws the same masks.
    init_seed : int
        Seed of fresh weights, used only without ``state_dict``.
    chunk_rows : int
        Rows per forward pass, which bounds the memory of one call.
    """

    def __init__(
        self,
        architecture: str,
        params: Mapping[str, Any],
        n_features: int,
        classes: Sequence[str],
        state_dict: Mapping[str, Any] | None = None,
        *,
        mc_samples: int = 20,
        mc_seed: int = 0,
        init_seed: int = 0,
        chunk_rows: int = 1024,
    ) -> None:
        if len(classes) < 2:
            raise ModelError(f"a classifier needs at least 2 classes, got {list(classes)}")
        self.classes: tuple[str, ...] = tuple(classes)
        self.architecture = architecture
        self.params: dict[str, Any] = dict(params)
        self.n_features = n_features
        self.mc_samples = _count("mc_samples", mc_samples, minimum=2)
        self.mc_seed = int(mc_seed)
        self.chunk_rows = _count("chunk_rows", chunk_rows, minimum=1)
        self.module: ClassifierModule = build_module(
            architecture, n_features, len(self.classes), self.params, seed=init_seed
        )
        self.module.eval()
        if state_dict is not None:
            self.load_state_dict(state_dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_members(self) -> int:
        """Committee size seen by committee strategies: the MC-dropout sample count."""
        return self.mc_samples

    @property
    def embedding_dim(self) -> int:
        return self.module.embedding_dim

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Return a copy of the weights as CPU tensors."""
        return {name: value.detach().to("cpu", copy=True) for name, value in self.module.state_dict().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load weights (tensors or numpy arrays) saved from the same architecture and class count.

        Raises
        ------
        ModelError
            When the checkpoint's parameter names differ (another architecture
            or other layer counts), its head width differs from the class
            count, or any other parameter shape differs.
        """
        expected = self.module.state_dict()
        checkpoint = {name: _as_tensor(value) for name, value in state_dict.items()}
        missing = sorted(set(expected) - set(checkpoint))
        unexpected = sorted(set(checkpoint) - set(expected))
        if missing or unexpected:
            raise ModelError(
                f"the checkpoint does not fit architecture {self.architecture!r} with params {self.params}: "
                f"missing {missing}, unexpected {unexpected}; it was saved from another architecture "
                "or other layer counts. Load a checkpoint of the same architecture and params, "
                "or train from fresh weights (model.train.warm_start: false)"
            )
        head_shape = tuple(checkpoint["head.weight"].shape)
        if head_shape != tuple(expected["head.weight"].shape):
            raise ModelError(
                f"the checkpoint's head has shape {head_shape} but this model needs "
                f"{tuple(expected['head.weight'].shape)} for {self.n_classes} classes and "
                f"{self.embedding_dim} embedding dimensions; the class list or the layer widths "
                "changed since it was saved. Train from fresh weights (model.train.warm_start: false)"
            )
        for name, value in checkpoint.items():
            if tuple(value.shape) != tuple(expected[name].shape):
                raise ModelError(
                    f"the checkpoint's {name} has shape {tuple(value.shape)} but architecture "
                    f"{self.architecture!r} with params {self.params} needs {tuple(expected[name].shape)}; "
                    "load a checkpoint of the same params, or train from fresh weights"
                )
        self.module.load_state_dict(checkpoint, strict=True)
        self.module.eval()

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Return class probabilities with dropout off, shape ``(n_rows, n_classes)``, float64.

        The softmax is taken in float64 over the float32 logits. This is the
        deterministic prediction, not the mean of the MC-dropout samples.
        """
        out = np.empty((len(self._checked(features)), self.n_classes), dtype=np.float64)
        with torch.inference_mode():
            for start, chunk in self._chunks(features):
                out[start : start + len(chunk)] = _softmax64(self.module(chunk))
        return out

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return the most likely class index per row, shape ``(n_rows,)``."""
        return self.predict_proba(features).argmax(axis=1)

    def embed(self, features: np.ndarray) -> np.ndarray:
        """Return the head's input with dropout off, shape ``(n_rows, embedding_dim)``, float64.

        The head is a linear layer with a bias, so this is the ``h`` that the
        expected-gradient-length and BADGE strategies expect.
        """
        out = np.empty((len(self._checked(features)), self.embedding_dim), dtype=np.float64)
        with torch.inference_mode():
            for start, chunk in self._chunks(features):
                out[start : start + len(chunk)] = self.module.embed(chunk).double().numpy()
        return out

    def gradient_embeddings(self, features: np.ndarray) -> np.ndarray:
        """Return the dense BADGE gradient embeddings, shape ``(n_rows, n_classes * embedding_dim)``, float64.

        Row ``i`` is ``(p_i - e_yhat) ⊗ h_i`` flattened in C order, the
        gradient of the cross-entropy loss for the predicted label with
        respect to ``head.weight``. Meant for small inputs and tests.
        Strategies keep it factorized, as
        ``al_ray.strategies.expected_change.gradient_embedding_factors`` does.

        Raises
        ------
        ModelError
            When the array would hold more than 2**25 values.
        """
        n_rows = len(self._checked(features))
        size = n_rows * self.n_classes * self.embedding_dim
        if size > _MAX_DENSE_GRADIENT_VALUES:
            raise ModelError(
                f"dense gradient embeddings of {n_rows} rows would hold {size} values, more than "
                f"{_MAX_DENSE_GRADIENT_VALUES}; use embed() with "
                "al_ray.strategies.expected_change.gradient_embedding_factors, which keeps them factorized"
            )
        factors, _ = gradient_embedding_factors(self.predict_proba(features))
        embeddings = self.embed(features)
        return (factors[:, :, None] * embeddings[:, None, :]).reshape(n_rows, self.n_classes * self.embedding_dim)

    def committee_proba(self, features: np.ndarray) -> np.ndarray:
        """Return each MC-dropout sample's probabilities, shape ``(mc_samples, n_rows, n_classes)``, float64.

        Sample ``s`` uses the masks of ``consistent_masks(module, mc_seed, s)``,
        so its value for a row does not depend on the other rows in the call.
        """
        out = np.empty((self.mc_samples, len(self._checked(features)), self.n_classes), dtype=np.float64)
        with torch.inference_mode():
            for start, chunk in self._chunks(features):
                # The stem has no dropout, so it runs once per chunk and only body and head run per sample.
                stem_out = self.module.stem(chunk)
                stop = start + len(chunk)
                for sample in range(self.mc_samples):
                    with consistent_masks(self.module, self.mc_seed, sample):
                        logits = self.module.head(self.module.body(stem_out))
                    out[sample, start:stop] = _softmax64(logits)
        return out

    def fitted_estimators(self) -> dict[str, object]:
        """Return an empty dict, because there is no scikit-learn estimator to log.

        The weights are in :meth:`state_dict`.
        """
        return {}

    def _checked(self, features: np.ndarray) -> np.ndarray:
        shape = np.shape(features)
        if len(shape) != 2 or shape[1] != self.n_features:
            raise ModelError(
                f"features must have shape (n_rows, {self.n_features}), got {shape}; "
                "pass the feature columns the model was built for"
            )
        return features

    def _chunks(self, features: np.ndarray) -> Iterator[tuple[int, torch.Tensor]]:
        for start in range(0, len(features), self.chunk_rows):
            chunk = np.ascontiguousarray(features[start : start + self.chunk_rows], dtype=np.float32)
            if not chunk.flags.writeable:
                # Arrays from the Ray object store are read-only, which torch.from_numpy warns about.
                chunk = chunk.copy()
            yield start, torch.from_numpy(chunk)

    def __getstate__(self) -> dict[str, Any]:
        # Only the arguments and the weights travel, and the module is rebuilt on
        # unpickling. The weights go as numpy arrays, which the Ray object store
        # shares between the workers of a node without a copy (Ray serialization docs).
        return {
            "architecture": self.architecture,
            "params": self.params,
            "n_features": self.n_features,
            "classes": self.classes,
            "mc_samples": self.mc_samples,
            "mc_seed": self.mc_seed,
            "chunk_rows": self.chunk_rows,
            "weights": {name: value.numpy() for name, value in self.state_dict().items()},
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(
            state["architecture"],
            state["params"],
            state["n_features"],
            state["classes"],
            state["weights"],
            mc_samples=state["mc_samples"],
            mc_seed=state["mc_seed"],
            chunk_rows=state["chunk_rows"],
        )

    def __repr__(self) -> str:
        return (
            f"TorchClassifier(architecture={self.architecture!r}, classes={self.n_classes}, "
            f"embedding_dim={self.embedding_dim}, mc_samples={self.mc_samples})"
        )


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    # torch.tensor copies, so an array from a read-only buffer (the Ray object
    # store) is never wrapped, which torch would warn about.
    return torch.tensor(np.asarray(value))


def _softmax64(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=1).numpy()


def _count(name: str, value: Any, *, minimum: int) -> int:
    try:
        count = -1 if isinstance(value, bool) else operator.index(value)
    except TypeError:
        count = -1
    if count < minimum:
        raise ModelError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return count
