"""Version specs and loading a classifier for a replica."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from al_ray.errors import ConfigError
from al_ray.loop.model_io import save_model
from al_ray.models import SklearnClassifier
from al_ray.models.committee import Committee
from al_ray.models.prior import PriorClassifier
from al_ray.serving.errors import ServingError
from al_ray.serving.spec import VersionSpec, feature_count, load_classifier

FEATURES = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 2.0], [5.0, 5.0, 1.0], [6.0, 5.0, 0.0]])
LABELS = np.array([0, 0, 1, 1])


def _fitted() -> SklearnClassifier:
    return SklearnClassifier(LogisticRegression(), ["cat", "dog"]).fit(FEATURES, LABELS)


def test_spec_from_file(tmp_path):
    spec = VersionSpec("3", model_path=tmp_path / "model.pkl")
    assert spec.model_path == str(tmp_path / "model.pkl")
    assert spec.source == str(tmp_path / "model.pkl")


def test_spec_from_registry():
    spec = VersionSpec("3", tracking_uri="sqlite:///mlflow.db", name="letters", version=3)
    assert spec.version == "3"
    assert spec.source == "models:/letters/3 at sqlite:///mlflow.db"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"label": "3/4", "model_path": "m.pkl"}, r"invalid version label '3/4'; use 1 to 64 letters"),
        ({"label": "", "model_path": "m.pkl"}, r"invalid version label ''"),
        ({"label": "3"}, r"version 3: give either model_path or tracking_uri, name and version, not both"),
        (
            {"label": "3", "model_path": "m.pkl", "tracking_uri": "u", "name": "n", "version": "1"},
            r"version 3: give either model_path or tracking_uri, name and version",
        ),
        (
            {"label": "3", "tracking_uri": "sqlite:///m.db", "name": "n"},
            r"version 3: a registered model needs tracking_uri, name and version together",
        ),
    ],
)
def test_spec_rejects(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        VersionSpec(**kwargs)


def test_load_file(tmp_path):
    save_model(_fitted(), tmp_path / "model.pkl")
    model = load_classifier(VersionSpec("3", model_path=tmp_path / "model.pkl"))
    assert model.classes == ("cat", "dog")


def test_load_missing_file(tmp_path):
    with pytest.raises(ServingError, match=r"model file .*missing.pkl of version 3 not found"):
        load_classifier(VersionSpec("3", model_path=tmp_path / "missing.pkl"))


def test_load_corrupt_file(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ServingError, match=r"cannot load model file .*model.pkl of version 3: UnpicklingError"):
        load_classifier(VersionSpec("3", model_path=tmp_path / "model.pkl"))


def test_load_not_a_classifier(tmp_path):
    save_model({"weights": [1, 2]}, tmp_path / "model.pkl")
    with pytest.raises(ServingError, match=r"version 3 \(.*model.pkl\) is a dict, which has no predict_proba"):
        load_classifier(VersionSpec("3", model_path=tmp_path / "model.pkl"))


def test_feature_count_kinds():
    assert feature_count(_fitted()) == 3
    assert feature_count(Committee([_fitted(), _fitted()])) == 3
    assert feature_count(PriorClassifier(["cat", "dog"], LABELS)) is None
