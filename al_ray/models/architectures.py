"""Torch classifier networks by name, with dropout that can act as an MC-dropout committee.

Every network is a :class:`ClassifierModule` of three parts. ``stem`` contains
the layers before the first dropout and is deterministic. ``body`` starts at
the first dropout layer. ``head`` is the last ``nn.Linear``, whose input is the
embedding. Because the stem never drops anything, MC-dropout scoring runs it
once per row and only the body and head once per MC sample.

Every dropout layer is an :class:`MCDropout`. It is ordinary inverted dropout
in train mode and the identity in eval mode. Inside
:func:`consistent_masks` it applies one fixed mask per (seed, MC sample,
layer), drawn over the layer's feature shape and shared by every row. A row
then gets the same prediction for a given MC sample whether it is scored alone
or inside any batch. This is the consistent MC dropout of A. Kirsch, J. van
Amersfoort and Y. Gal, "BatchBALD: Efficient and diverse batch acquisition for
deep Bayesian active learning", NeurIPS 2019.
"""

from __future__ import annotations

import contextlib
import math
import operator
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from al_ray.errors import ModelError

__all__ = [
    "ARCHITECTURES",
    "ClassifierModule",
    "MCDropout",
    "build_module",
    "consistent_masks",
]

_MLP_DEFAULTS: dict[str, Any] = {"hidden": [256, 128], "dropout": 0.2}
_CNN_DEFAULTS: dict[str, Any] = {
    "image_shape": [1, 28, 28],
    "channels": [8, 16],
    "hidden": 64,
    "dropout": 0.25,
}


class MCDropout(nn.Module):
    """Inverted dropout that can apply a fixed, seeded mask for MC-dropout sampling.

    Parameters
    ----------
    p : float
        Probability of zeroing an element, in ``[0, 1)``. Kept elements are
        scaled by ``1 / (1 - p)``, in train mode and under a fixed mask alike.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = float(p)
        self.mask_seed: int | None = None
        """Seed of the fixed mask, set only inside :func:`consistent_masks`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask_seed is None:
            return functional.dropout(x, self.p, self.training)
        return x * self.fixed_mask(tuple(x.shape[1:]), x.device, x.dtype)

    def fixed_mask(self, feature_shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Return the scaled keep mask of the current seed, shape ``feature_shape``.

        The mask is drawn on the CPU from ``mask_seed`` alone, so it is the same
        on every device and for every batch size.
        """
        if self.mask_seed is None:
            raise ModelError("no mask seed is set; call fixed_mask inside consistent_masks()")
        generator = torch.Generator(device="cpu").manual_seed(self.mask_seed)
        keep = torch.rand(feature_shape, generator=generator) >= self.p
        return (keep.to(dtype) / (1.0 - self.p)).to(device)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def _mask_seed(seed: int, sample_index: int, layer_index: int) -> int:
    sequence = np.random.SeedSequence(entropy=int(seed), spawn_key=(int(sample_index), int(layer_index)))
    return int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


@contextlib.contextmanager
def consistent_masks(module: nn.Module, seed: int, sample_index: int) -> Iterator[None]:
    """Fix the dropout masks of ``module`` for one MC sample, in train and eval mode.

    Each :class:`MCDropout` in ``module``, numbered in ``module.modules()``
    order, gets a mask seeded from ``(seed, sample_index, layer number)``. On
    exit every layer gets back the seed it had before, so the context nests.
    """
    layers = [layer for layer in module.modules() if isinstance(layer, MCDropout)]
    previous = [layer.mask_seed for layer in layers]
    try:
        for layer_index, layer in enumerate(layers):
            layer.mask_seed = _mask_seed(seed, sample_index, layer_index)
        yield
    finally:
        for layer, seed_before in zip(layers, previous):
            layer.mask_seed = seed_before


class ClassifierModule(nn.Module):
    """A classifier network: ``head(body(stem(x)))``, logits of shape ``(n, n_classes)``.

    Parameters
    ----------
    architecture : str
        Name in :data:`ARCHITECTURES`, kept for error messages and repr.
    stem : nn.Module
        Deterministic layers that take features of shape ``(n, n_features)``.
    body : nn.Module
        Layers from the first :class:`MCDropout` on, ending at the embedding.
    head : nn.Linear
        Maps the embedding of shape ``(n, embedding_dim)`` to the logits.
    params : mapping
        The architecture's parameters, defaults filled in.
    """

    def __init__(
        self,
        architecture: str,
        stem: nn.Module,
        body: nn.Module,
        head: nn.Linear,
        params: Mapping[str, Any],
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.params = dict(params)
        self.stem = stem
        self.body = body
        self.head = head

    @property
    def n_classes(self) -> int:
        return self.head.out_features

    @property
    def embedding_dim(self) -> int:
        return self.head.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits, shape ``(n, n_classes)``."""
        return self.head(self.body(self.stem(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the head's input (penultimate activations), shape ``(n, embedding_dim)``."""
        return self.body(self.stem(x))


def _checked_params(architecture: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ModelError(
            f"architecture {architecture!r} takes no parameter(s) {unknown}; "
            f"accepted: {', '.join(sorted(defaults))}"
        )
    return {**defaults, **params}


def _positive_int(architecture: str, name: str, value: Any) -> int:
    try:
        number = 0 if isinstance(value, bool) else operator.index(value)
    except TypeError:
        number = 0
    if number < 1:
        raise ModelError(f"architecture {architecture!r}: {name} must be a positive integer, got {value!r}")
    return number


def _positive_ints(architecture: str, name: str, value: Any, length: int | None = None) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value or (length is not None and len(value) != length):
        size = "a non-empty list of" if length is None else f"a list of {length}"
        raise ModelError(
            f"architecture {architecture!r}: {name} must be {size} positive integers, got {value!r}"
        )
    return [_positive_int(architecture, f"{name}[{index}]", item) for index, item in enumerate(value)]


def _dropout_probability(architecture: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ModelError(
            f"architecture {architecture!r}: dropout must be a number in [0, 1), got {value!r}; "
            "0 turns dropout off, which also makes every MC-dropout sample identical"
        )
    return float(value)


def build_mlp(n_features: int, n_classes: int, params: Mapping[str, Any]) -> ClassifierModule:
    """Build a multilayer perceptron for tabular features.

    Parameters: ``hidden``, the widths of the hidden layers (default
    ``[256, 128]``), and ``dropout``, the drop probability after each hidden
    ReLU (default 0.2). The embedding is the last hidden layer's output.
    """
    resolved = _checked_params("mlp", params, _MLP_DEFAULTS)
    widths = _positive_ints("mlp", "hidden", resolved["hidden"])
    dropout = _dropout_probability("mlp", resolved["dropout"])
    resolved.update(hidden=widths, dropout=dropout)

    stem = nn.Sequential(OrderedDict([("linear0", nn.Linear(n_features, widths[0])), ("relu0", nn.ReLU())]))
    body_layers: list[tuple[str, nn.Module]] = [("dropout0", MCDropout(dropout))]
    for index in range(1, len(widths)):
        body_layers += [
            (f"linear{index}", nn.Linear(widths[index - 1], widths[index])),
            (f"relu{index}", nn.ReLU()),
            (f"dropout{index}", MCDropout(dropout)),
        ]
    head = nn.Linear(widths[-1], n_classes)
    return ClassifierModule("mlp", stem, nn.Sequential(OrderedDict(body_layers)), head, resolved)


def build_cnn(n_features: int, n_classes: int, params: Mapping[str, Any]) -> ClassifierModule:
    """Build a small convolutional network for images given as flat rows.

    Two blocks of 3x3 convolution, ReLU and 2x2 max pooling, then a hidden
    linear layer with ReLU, dropout and the head. Parameters: ``image_shape``
    ``[channels, height, width]`` (default ``[1, 28, 28]``, MNIST),
    ``channels`` of the two convolutions (default ``[8, 16]``), ``hidden``
    width (default 64) and ``dropout`` (default 0.25). Rows are reshaped to
    ``image_shape`` in C order, so ``n_features`` must equal its product.
    """
    resolved = _checked_params("cnn", params, _CNN_DEFAULTS)
    image_shape = _positive_ints("cnn", "image_shape", resolved["image_shape"], length=3)
    channels = _positive_ints("cnn", "channels", resolved["channels"], length=2)
    hidden = _positive_int("cnn", "hidden", resolved["hidden"])
    dropout = _dropout_probability("cnn", resolved["dropout"])
    resolved.update(image_shape=image_shape, channels=channels, hidden=hidden, dropout=dropout)

    n_pixels = math.prod(image_shape)
    if n_features != n_pixels:
        raise ModelError(
            f"architecture 'cnn' needs n_features = {' * '.join(map(str, image_shape))} = {n_pixels} "
            f"for image_shape {image_shape}, got n_features {n_features}; set model.params.image_shape "
            "to the images' [channels, height, width], or use architecture 'mlp' for tabular features"
        )
    in_channels, height, width = image_shape
    if height < 4 or width < 4:
        raise ModelError(
            f"architecture 'cnn' needs images of at least 4 x 4 pixels for its two 2x2 poolings, "
            f"got image_shape {image_shape}; use architecture 'mlp' for smaller inputs"
        )
    flat = channels[1] * (height // 4) * (width // 4)
    stem = nn.Sequential(
        OrderedDict(
            [
                ("unflatten", nn.Unflatten(1, tuple(image_shape))),
                ("conv0", nn.Conv2d(in_channels, channels[0], kernel_size=3, padding=1)),
                ("relu0", nn.ReLU()),
                ("pool0", nn.MaxPool2d(2)),
                ("conv1", nn.Conv2d(channels[0], channels[1], kernel_size=3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("linear", nn.Linear(flat, hidden)),
                ("relu", nn.ReLU()),
            ]
        )
    )
    body = nn.Sequential(OrderedDict([("dropout", MCDropout(dropout))]))
    return ClassifierModule("cnn", stem, body, nn.Linear(hidden, n_classes), resolved)


ARCHITECTURES: dict[str, Callable[[int, int, Mapping[str, Any]], ClassifierModule]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
}
"""Builders by config name: ``builder(n_features, n_classes, params)``."""


def build_module(
    name: str,
    n_features: int,
    n_classes: int,
    params: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
) -> ClassifierModule:
    """Build the network called ``name``, in train mode.

    Parameters
    ----------
    name : str
        A key of :data:`ARCHITECTURES`.
    n_features : int
        Columns of a feature row.
    n_classes : int
        Outputs of the head, at least 2.
    params : mapping, optional
        Architecture parameters; missing ones take their defaults.
    seed : int, optional
        Seed of the initial weights. With a seed the global torch random state
        is left untouched. Without one the weights come from it, as in torch.

    Raises
    ------
    ModelError
        For an unknown name, an unknown or invalid parameter, or counts below
        their minimum.
    """
    if name not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {name!r}; use one of {', '.join(sorted(ARCHITECTURES))}")
    n_features = _positive_int(name, "n_features", n_features)
    try:
        class_count = -1 if isinstance(n_classes, bool) else operator.index(n_classes)
    except TypeError:
        class_count = -1
    if class_count < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got n_classes {n_classes!r}")
    if params is not None and not isinstance(params, Mapping):
        raise ModelError(f"architecture {name!r}: params must be a mapping of names to values, got {params!r}")
    builder = ARCHITECTURES[name]
    if seed is None:
        return builder(n_features, class_count, params or {})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % 2**63)
        return builder(n_features, class_count, params or {})
