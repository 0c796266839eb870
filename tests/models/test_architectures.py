"""Torch architectures: shapes, parameter checks, seeded weights and consistent MC-dropout masks."""

import re

import numpy as np
import pytest
import torch

from al_ray.errors import ModelError
from al_ray.models.architectures import (
    ARCHITECTURES,
    ClassifierModule,
    MCDropout,
    build_module,
    consistent_masks,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # On two busy shared cores, a CNN epoch with two torch threads took about 20
    # times as long as with one (measured once), so these tests use one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rows(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32))


def dropout_layers(module: torch.nn.Module) -> list[MCDropout]:
    return [layer for layer in module.modules() if isinstance(layer, MCDropout)]


def test_architectures_names() -> None:
    assert sorted(ARCHITECTURES) == ["cnn", "mlp"]


def test_mlp_default_shapes() -> None:
    module = build_module("mlp", 5, 3, {}, seed=0).eval()
    assert isinstance(module, ClassifierModule)
    assert module.params == {"hidden": [256, 128], "dropout": 0.2}
    assert module.head.in_features == 128
    assert module.head.out_features == 3
    assert module.embedding_dim == 128
    assert module.n_classes == 3
    x = rows(4, 5)
    assert module(x).shape == (4, 3)
    assert module.embed(x).shape == (4, 128)
    assert [layer.p for layer in dropout_layers(module)] == [0.2, 0.2]


def test_mlp_embed_is_head_input() -> None:
    module = build_module("mlp", 5, 3, {"hidden": [7, 6, 4]}, seed=0).eval()
    x = rows(4, 5)
    with torch.no_grad():
        embeddings = module.embed(x)
        torch.testing.assert_close(module.head(embeddings), module(x), rtol=0, atol=0)
    assert embeddings.shape == (4, 4)
    # The embedding is a ReLU output, so it is never negative.
    assert bool((embeddings >= 0).all())
    assert len(dropout_layers(module)) == 3


def test_cnn_default_shapes() -> None:
    module = build_module("cnn", 784, 10, {}, seed=0).eval()
    assert module.params == {"image_shape": [1, 28, 28], "channels": [8, 16], "hidden": 64, "dropout": 0.25}
    x = rows(3, 784)
    assert module(x).shape == (3, 10)
    assert module.embed(x).shape == (3, 64)
    assert module.embedding_dim == 64
    assert [layer.p for layer in dropout_layers(module)] == [0.25]


def test_cnn_other_image_shape() -> None:
    module = build_module("cnn", 3 * 8 * 10, 2, {"image_shape": [3, 8, 10], "channels": [4, 5], "hidden": 6})
    assert module.eval()(rows(2, 240)).shape == (2, 2)
    # Two 2x2 poolings: 8 x 10 pixels become 2 x 2, times 5 channels.
    assert module.stem.linear.in_features == 5 * 2 * 2


def test_cnn_rejects_feature_count() -> None:
    message = (
        "architecture 'cnn' needs n_features = 1 * 28 * 28 = 784 for image_shape [1, 28, 28], "
        "got n_features 100; set model.params.image_shape to the images' [channels, height, width], "
        "or use architecture 'mlp' for tabular features"
    )
    with pytest.raises(ModelError, match=re.escape(message)):
        build_module("cnn", 100, 10, {})


def test_cnn_rejects_tiny_images() -> None:
    with pytest.raises(ModelError, match=r"at least 4 x 4 pixels .* got image_shape \[1, 3, 8\]"):
        build_module("cnn", 24, 2, {"image_shape": [1, 3, 8]})


def test_build_rejects_unknown_architecture() -> None:
    with pytest.raises(ModelError, match=r"^unknown architecture 'resnet'; use one of cnn, mlp$"):
        build_module("resnet", 4, 2, {})


@pytest.mark.parametrize(
    ("name", "accepted"),
    [("mlp", "dropout, hidden"), ("cnn", "channels, dropout, hidden, image_shape")],
)
def test_build_rejects_unknown_param(name: str, accepted: str) -> None:
    message = f"architecture '{name}' takes no parameter(s) ['depth', 'width']; accepted: {accepted}"
    with pytest.raises(ModelError, match=re.escape(message)):
        build_module(name, 784, 2, {"width": 3, "depth": 2})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("mlp", {"hidden": []}, r"'mlp': hidden must be a non-empty list of positive integers, got \[\]"),
        ("mlp", {"hidden": 64}, r"'mlp': hidden must be a non-empty list of positive integers, got 64"),
        ("mlp", {"hidden": [8, 0]}, r"'mlp': hidden\[1\] must be a positive integer, got 0"),
        ("mlp", {"hidden": [8.5]}, r"'mlp': hidden\[0\] must be a positive integer, got 8\.5"),
        ("mlp", {"hidden": [True]}, r"'mlp': hidden\[0\] must be a positive integer, got True"),
        ("mlp", {"dropout": 1.0}, r"'mlp': dropout must be a number in \[0, 1\), got 1\.0; 0 turns dropout off"),
        ("mlp", {"dropout": -0.1}, r"'mlp': dropout must be a number in \[0, 1\), got -0\.1"),
        ("mlp", {"dropout": "0.2"}, r"'mlp': dropout must be a number in \[0, 1\), got '0\.2'"),
        ("cnn", {"image_shape": [28, 28]}, r"'cnn': image_shape must be a list of 3 positive integers"),
        ("cnn", {"channels": [8]}, r"'cnn': channels must be a list of 2 positive integers, got \[8\]"),
        ("cnn", {"hidden": 0}, r"'cnn': hidden must be a positive integer, got 0"),
    ],
)
def test_build_rejects_param_value(name: str, params: dict, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        build_module(name, 784, 2, params)


@pytest.mark.parametrize("n_classes", [1, 0, True, 2.0])
def test_build_rejects_class_count(n_classes) -> None:
    with pytest.raises(ModelError, match=r"a classifier needs at least 2 classes, got n_classes"):
        build_module("mlp", 4, n_classes, {})


def test_build_rejects_feature_count() -> None:
    with pytest.raises(ModelError, match=r"'mlp': n_features must be a positive integer, got 0"):
        build_module("mlp", 0, 2, {})


def test_build_rejects_params_type() -> None:
    with pytest.raises(ModelError, match=r"params must be a mapping of names to values, got \[64\]"):
        build_module("mlp", 4, 2, [64])


def test_build_seed_repeatable() -> None:
    first = build_module("mlp", 4, 3, {"hidden": [8]}, seed=5).state_dict()
    second = build_module("mlp", 4, 3, {"hidden": [8]}, seed=5).state_dict()
    other = build_module("mlp", 4, 3, {"hidden": [8]}, seed=6).state_dict()
    for name in first:
        assert torch.equal(first[name], second[name])
    assert not torch.equal(first["head.weight"], other["head.weight"])


def test_build_seed_leaves_global_rng() -> None:
    before = torch.get_rng_state()
    build_module("cnn", 784, 10, {}, seed=1)
    assert torch.equal(torch.get_rng_state(), before)


def test_mcdropout_train_and_eval() -> None:
    layer = MCDropout(0.5)
    x = torch.ones(200, 50)
    dropped = layer.train()(x)
    # Kept elements are scaled by 1 / (1 - 0.5) = 2.
    assert set(dropped.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(layer.eval()(x), x)


def test_masks_row_alone_matches_batch() -> None:
    module = build_module("mlp", 6, 3, {"hidden": [32, 16], "dropout": 0.5}, seed=0).eval()
    batch = rows(9, 6)
    layer = dropout_layers(module)[1]
    with torch.no_grad(), consistent_masks(module, seed=11, sample_index=2):
        # Exact: the mask depends only on (seed, sample, layer), never on the batch.
        alone = layer(torch.ones(1, 16))
        together = layer(torch.ones(9, 16))
        assert torch.equal(together, alone.expand(9, 16))
        logits_alone = torch.cat([module(batch[i : i + 1]) for i in range(9)])
        logits_batch = module(batch)
    torch.testing.assert_close(logits_alone, logits_batch, rtol=1e-6, atol=1e-6)


def test_masks_drop_in_eval_mode() -> None:
    module = build_module("mlp", 6, 3, {"hidden": [64], "dropout": 0.5}, seed=0).eval()
    layer = dropout_layers(module)[0]
    with consistent_masks(module, seed=0, sample_index=0):
        masked = layer(torch.ones(1, 64))
    assert set(masked.unique().tolist()) == {0.0, 2.0}


def test_masks_differ_by_seed_sample_layer() -> None:
    module = build_module("mlp", 6, 3, {"hidden": [64, 64], "dropout": 0.5}, seed=0).eval()
    first, second = dropout_layers(module)
    ones = torch.ones(1, 64)

    def masks(seed: int, sample_index: int) -> tuple[torch.Tensor, torch.Tensor]:
        with consistent_masks(module, seed, sample_index):
            return first(ones), second(ones)

    base = masks(0, 0)
    assert torch.equal(masks(0, 0)[0], base[0])
    assert not torch.equal(masks(1, 0)[0], base[0])
    assert not torch.equal(masks(0, 1)[0], base[0])
    # Layers of the same width get different masks in one sample.
    assert not torch.equal(base[0], base[1])


def test_masks_restored_on_exit() -> None:
    module = build_module("mlp", 6, 3, {"hidden": [64]}, seed=0).eval()
    layer = dropout_layers(module)[0]
    with consistent_masks(module, 0, 0):
        outer = layer.mask_seed
        with consistent_masks(module, 0, 1):
            assert layer.mask_seed != outer
        assert layer.mask_seed == outer
    assert layer.mask_seed is None
    assert torch.equal(layer(torch.ones(1, 64)), torch.ones(1, 64))


def test_masks_keep_share_near_one_minus_p() -> None:
    layer = MCDropout(0.25)
    module = torch.nn.Sequential(layer)
    with consistent_masks(module, 3, 0):
        kept = float((layer(torch.ones(1, 20_000)) > 0).float().mean())
    # 20 000 Bernoulli(0.75) draws: the standard deviation of the share is 0.003.
    assert kept == pytest.approx(0.75, abs=0.02)


def test_fixed_mask_needs_context() -> None:
    with pytest.raises(ModelError, match=r"no mask seed is set; call fixed_mask inside consistent_masks\(\)"):
        MCDropout(0.5).fixed_mask((3,), torch.device("cpu"), torch.float32)
