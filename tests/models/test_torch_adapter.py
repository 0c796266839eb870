"""TorchClassifier: hand-set weights, MC-dropout committee, pickling, checkpoints and strategy inputs."""

import math
import pickle
import re
import warnings

import cloudpickle
import numpy as np
import pytest
import torch

from al_ray.errors import ModelError
from al_ray.models.torch_adapter import TorchClassifier
from al_ray.scoring.inputs import build_batch
from al_ray.strategies import STRATEGIES, Need, SelectionContext
from al_ray.strategies.expected_change import (
    expected_gradient_length,
    gradient_embedding_factors,
    gradient_embedding_sq_distances,
)

CLASSES = ("a", "b", "c")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    # On two busy shared cores, a CNN epoch with two torch threads took about 20
    # times as long as with one (measured once), so these tests use one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def features(n: int, d: int = 4, seed: int = 0, dtype: type = np.float32) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


def small_mlp(**kwargs) -> TorchClassifier:
    return TorchClassifier("mlp", {"hidden": [16, 8], "dropout": 0.5}, 4, CLASSES, **kwargs)


def hand_set_model() -> TorchClassifier:
    """Return a 2-feature, 2-class MLP whose hidden layer and head are identity matrices, biases 0."""
    model = TorchClassifier("mlp", {"hidden": [2]}, 2, ("neg", "pos"))
    eye = torch.eye(2)
    model.load_state_dict(
        {
            "stem.linear0.weight": eye,
            "stem.linear0.bias": torch.zeros(2),
            "head.weight": eye,
            "head.bias": torch.zeros(2),
        }
    )
    return model


def softmax2(a: float, b: float) -> tuple[float, float]:
    return 1 / (1 + math.exp(b - a)), 1 / (1 + math.exp(a - b))


def test_hand_set_embed_and_proba() -> None:
    model = hand_set_model()
    x = np.array([[1.0, 2.0], [-1.0, 3.0]])
    # h = ReLU(x): the -1 of row 1 is cut to 0.
    np.testing.assert_array_equal(model.embed(x), [[1.0, 2.0], [0.0, 3.0]])
    # Logits equal h, so p = softmax(1, 2) and softmax(0, 3).
    expected = [softmax2(1.0, 2.0), softmax2(0.0, 3.0)]
    proba = model.predict_proba(x)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba, expected, rtol=1e-7)
    np.testing.assert_array_equal(model.predict(x), [1, 1])


def test_hand_set_gradient_embeddings() -> None:
    model = hand_set_model()
    x = np.array([[1.0, 2.0], [-1.0, 3.0]])
    p0, p1 = softmax2(1.0, 2.0), softmax2(0.0, 3.0)
    # Both rows predict class 1, so a = p - e_1 = (p_0, -p_0) and g = a ⊗ h, class-major.
    expected = [
        [p0[0] * 1, p0[0] * 2, -p0[0] * 1, -p0[0] * 2],
        [p1[0] * 0, p1[0] * 3, -p1[0] * 0, -p1[0] * 3],
    ]
    gradients = model.gradient_embeddings(x)
    assert gradients.shape == (2, 2 * 2)
    assert gradients.dtype == np.float64
    np.testing.assert_allclose(gradients, expected, rtol=1e-7, atol=1e-12)


def test_gradient_embeddings_match_autograd() -> None:
    model = small_mlp(init_seed=3)
    x = features(5)
    proba = model.predict_proba(x)
    dense = model.gradient_embeddings(x)
    assert dense.shape == (5, 3 * 8)
    for row in range(5):
        model.module.zero_grad()
        logits = model.module(torch.from_numpy(x[row : row + 1]))
        target = torch.tensor([int(proba[row].argmax())])
        torch.nn.functional.cross_entropy(logits, target).backward()
        expected = model.module.head.weight.grad.double().numpy().reshape(-1)
        np.testing.assert_allclose(dense[row], expected, rtol=1e-5, atol=1e-7)


def test_gradient_embeddings_match_factorized_distances() -> None:
    model = small_mlp(init_seed=4)
    x = features(6, seed=1)
    dense = model.gradient_embeddings(x)
    factors, _ = gradient_embedding_factors(model.predict_proba(x))
    embeddings = model.embed(x)
    from_factors = gradient_embedding_sq_distances(factors, embeddings, factors[:2], embeddings[:2])
    direct = ((dense[:, None, :] - dense[None, :2, :]) ** 2).sum(axis=2)
    np.testing.assert_allclose(from_factors, direct, rtol=1e-9, atol=1e-12)


def test_embed_fits_expected_gradient_length() -> None:
    # EGL assumes that h feeds a linear layer with a bias. Check it against the
    # autograd gradient norms of head.weight and head.bias for every label.
    model = small_mlp(init_seed=5)
    x = features(4, seed=2)
    proba = model.predict_proba(x)
    utilities = expected_gradient_length(proba, model.embed(x))
    for row in range(4):
        expected = 0.0
        for label in range(3):
            model.module.zero_grad()
            logits = model.module(torch.from_numpy(x[row : row + 1]))
            torch.nn.functional.cross_entropy(logits, torch.tensor([label])).backward()
            head = model.module.head
            norm = math.sqrt(float(head.weight.grad.double().square().sum() + head.bias.grad.double().square().sum()))
            expected += proba[row, label] * norm
        assert utilities[row] == pytest.approx(expected, rel=1e-5)


def test_predict_proba_shapes_and_dtypes() -> None:
    model = small_mlp()
    x32 = features(7)
    proba = model.predict_proba(x32)
    assert proba.shape == (7, 3)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), np.ones(7), rtol=1e-12)
    np.testing.assert_array_equal(model.predict_proba(x32.astype(np.float64)), proba)
    assert model.embed(x32).shape == (7, 8)
    assert model.embed(x32).dtype == np.float64


def test_chunking_does_not_change_outputs() -> None:
    whole = small_mlp(mc_samples=4)
    chunked = small_mlp(mc_samples=4, chunk_rows=3)
    x = features(10)
    np.testing.assert_allclose(chunked.predict_proba(x), whole.predict_proba(x), rtol=1e-6)
    np.testing.assert_allclose(chunked.embed(x), whole.embed(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(chunked.committee_proba(x), whole.committee_proba(x), rtol=1e-6)


def test_empty_features() -> None:
    model = small_mlp(mc_samples=3)
    empty = np.empty((0, 4), dtype=np.float32)
    assert model.predict_proba(empty).shape == (0, 3)
    assert model.embed(empty).shape == (0, 8)
    assert model.committee_proba(empty).shape == (3, 0, 3)
    assert model.gradient_embeddings(empty).shape == (0, 24)


def test_committee_proba_shape_and_members() -> None:
    model = small_mlp(mc_samples=5)
    committee = model.committee_proba(features(6))
    assert committee.shape == (5, 6, 3)
    assert committee.dtype == np.float64
    assert model.n_members == 5
    np.testing.assert_allclose(committee.sum(axis=2), np.ones((5, 6)), rtol=1e-12)
    # Dropout 0.5 on 16 and 8 units: samples differ from each other and from the eval prediction.
    assert not np.array_equal(committee[0], committee[1])
    assert not np.allclose(committee.mean(axis=0), model.predict_proba(features(6)))


def test_committee_row_alone_matches_batch() -> None:
    model = small_mlp(mc_samples=6, mc_seed=9)
    x = features(8)
    together = model.committee_proba(x)
    for row in range(8):
        alone = model.committee_proba(x[row : row + 1])
        np.testing.assert_allclose(alone[:, 0], together[:, row], rtol=1e-6, atol=1e-9)


def test_committee_seeds() -> None:
    x = features(5)
    first = small_mlp(mc_samples=4, mc_seed=1).committee_proba(x)
    again = small_mlp(mc_samples=4, mc_seed=1).committee_proba(x)
    other = small_mlp(mc_samples=4, mc_seed=2).committee_proba(x)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_scoring_leaves_global_rng() -> None:
    before = torch.get_rng_state()
    model = small_mlp(mc_samples=3)
    model.committee_proba(features(4))
    model.predict_proba(features(4))
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs(name: str) -> None:
    strategy = STRATEGIES[name]()
    model = small_mlp(mc_samples=4)
    x = features(30, seed=3)
    row_ids = np.arange(100, 130, dtype=np.int64)
    batch = build_batch(strategy.needs | strategy.candidate_needs, model, row_ids, x)
    context = SelectionContext(labeled_features=features(5, seed=4), pool_sample=features(10, seed=5))
    selection = strategy.query(batch, n=4, seed=0, context=context)
    assert len(selection.row_ids) == 4
    assert set(selection.row_ids.tolist()) <= set(row_ids.tolist())
    assert np.all(np.isfinite(selection.utilities))


def test_committee_needs_are_mc_samples() -> None:
    model = small_mlp(mc_samples=7)
    batch = build_batch(frozenset({Need.COMMITTEE_PROBABILITIES}), model, np.arange(3), features(3))
    assert batch.committee_probabilities.shape == (7, 3, 3)


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_pickle_round_trip(dumps) -> None:
    model = TorchClassifier("cnn", {"hidden": 16}, 784, CLASSES, mc_samples=3, mc_seed=4, init_seed=8)
    x = features(5, d=784)
    payload = dumps(model)
    restored = pickle.loads(payload)
    np.testing.assert_array_equal(restored.predict_proba(x), model.predict_proba(x))
    np.testing.assert_array_equal(restored.committee_proba(x), model.committee_proba(x))
    np.testing.assert_array_equal(restored.embed(x), model.embed(x))
    assert restored.classes == CLASSES
    assert restored.mc_samples == 3
    weight_bytes = sum(value.numel() * value.element_size() for value in model.state_dict().values())
    # The weights and a few hundred bytes of arguments, no module object.
    assert len(payload) < weight_bytes + 4096


def test_state_dict_is_cpu_copy() -> None:
    model = small_mlp()
    state = model.state_dict()
    state["head.bias"] += 1.0
    assert not torch.equal(model.state_dict()["head.bias"], state["head.bias"])


def test_load_state_dict_round_trip() -> None:
    source = small_mlp(init_seed=1)
    target = small_mlp(init_seed=2)
    x = features(4)
    assert not np.array_equal(target.predict_proba(x), source.predict_proba(x))
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target.predict_proba(x), source.predict_proba(x))


def test_load_state_dict_read_only_arrays() -> None:
    source = small_mlp(init_seed=1)
    arrays = {name: value.numpy() for name, value in source.state_dict().items()}
    for array in arrays.values():
        array.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = small_mlp(state_dict=arrays)
    np.testing.assert_array_equal(restored.predict_proba(features(3)), source.predict_proba(features(3)))


def test_load_rejects_other_architecture() -> None:
    cnn = TorchClassifier("cnn", {}, 784, CLASSES)
    mlp = TorchClassifier("mlp", {"hidden": [8]}, 784, CLASSES)
    message = (
        "the checkpoint does not fit architecture 'mlp' with params {'hidden': [8]}: "
        "missing ['stem.linear0.bias', 'stem.linear0.weight'], unexpected ['stem.conv0.bias', "
    )
    with pytest.raises(ModelError, match=re.escape(message)) as raised:
        mlp.load_state_dict(cnn.state_dict())
    assert "it was saved from another architecture or other layer counts" in str(raised.value)
    assert "model.train.warm_start: false" in str(raised.value)


def test_load_rejects_head_width() -> None:
    three = small_mlp()
    two = TorchClassifier("mlp", {"hidden": [16, 8], "dropout": 0.5}, 4, ("a", "b"))
    message = (
        "the checkpoint's head has shape (3, 8) but this model needs (2, 8) for 2 classes and "
        "8 embedding dimensions; the class list or the layer widths changed since it was saved. "
        "Train from fresh weights (model.train.warm_start: false)"
    )
    with pytest.raises(ModelError, match=re.escape(message)):
        two.load_state_dict(three.state_dict())


def test_load_rejects_hidden_width() -> None:
    wide = TorchClassifier("mlp", {"hidden": [32, 8]}, 4, CLASSES)
    with pytest.raises(ModelError, match=re.escape("the checkpoint's stem.linear0.weight has shape (32, 4)")):
        small_mlp().load_state_dict(wide.state_dict())


def test_rejects_feature_width() -> None:
    message = r"features must have shape \(n_rows, 4\), got \(3, 5\); pass the feature columns"
    with pytest.raises(ModelError, match=message):
        small_mlp().predict_proba(features(3, d=5))


@pytest.mark.parametrize("mc_samples", [1, 0, 2.5])
def test_rejects_mc_samples(mc_samples) -> None:
    with pytest.raises(ModelError, match=rf"mc_samples must be an integer >= 2, got {mc_samples}"):
        small_mlp(mc_samples=mc_samples)


def test_rejects_one_class() -> None:
    with pytest.raises(ModelError, match=r"a classifier needs at least 2 classes, got \['only'\]"):
        TorchClassifier("mlp", {}, 4, ["only"])


def test_gradient_embeddings_size_limit(monkeypatch) -> None:
    monkeypatch.setattr("al_ray.models.torch_adapter._MAX_DENSE_GRADIENT_VALUES", 100)
    with pytest.raises(ModelError, match=r"dense gradient embeddings of 5 rows would hold 120 values, more than 100"):
        small_mlp().gradient_embeddings(features(5))


def test_face_of_other_adapters() -> None:
    model = small_mlp(mc_samples=3)
    assert model.classes == CLASSES
    assert model.n_classes == 3
    assert model.fitted_estimators() == {}
    assert not model.module.training
    assert repr(model) == "TorchClassifier(architecture='mlp', classes=3, embedding_dim=8, mc_samples=3)"
