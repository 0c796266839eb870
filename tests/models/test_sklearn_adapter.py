"""The scikit-learn adapter: full class list, aligned probability columns."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from al_ray.errors import ModelError
from al_ray.models import SklearnClassifier, build_estimator

CLASSES = ["a", "b", "c", "d"]


def _two_blobs():
    # Class 1 ("b") around x=0 and class 3 ("d") around x=10; "a" and "c" never labeled.
    features = np.array([[0.0], [0.5], [-0.5], [10.0], [10.5], [9.5]])
    labels = np.array([1, 1, 1, 3, 3, 3])
    return features, labels


def test_columns_aligned_to_full_class_list():
    features, labels = _two_blobs()
    model = SklearnClassifier(LogisticRegression(), CLASSES).fit(features, labels)
    proba = model.predict_proba(np.array([[0.0], [10.0]]))
    assert proba.shape == (2, 4)
    np.testing.assert_array_equal(proba[:, [0, 2]], 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 1] > 0.9
    assert proba[1, 3] > 0.9
    np.testing.assert_array_equal(model.predict(np.array([[0.0], [10.0]])), [1, 3])


def test_single_class_predicts_it():
    model = SklearnClassifier(LogisticRegression(), CLASSES).fit(np.zeros((3, 2)), np.array([2, 2, 2]))
    proba = model.predict_proba(np.ones((2, 2)))
    np.testing.assert_array_equal(proba, [[0, 0, 1, 0], [0, 0, 1, 0]])


def test_float32_and_float64_agree():
    features, labels = _two_blobs()
    model = SklearnClassifier(LogisticRegression(), CLASSES).fit(features.astype(np.float32), labels)
    rows = np.array([[3.0], [7.0]])
    np.testing.assert_array_equal(model.predict_proba(rows.astype(np.float32)), model.predict_proba(rows))


def test_predict_before_fit():
    with pytest.raises(ModelError, match="not fitted"):
        SklearnClassifier(LogisticRegression(), CLASSES).predict_proba(np.zeros((1, 1)))


def test_label_out_of_range():
    with pytest.raises(ModelError, match=r"class indices in \[0, 4\)"):
        SklearnClassifier(LogisticRegression(), CLASSES).fit(np.zeros((2, 1)), np.array([0, 4]))


def test_build_sets_seed():
    estimator = build_estimator("random_forest", {"n_estimators": 5}, standardize=False, seed=2**40 + 7)
    assert estimator.random_state == (2**40 + 7) % 2**32
    assert estimator.n_estimators == 5


def test_build_dotted_path_and_standardize():
    pipeline = build_estimator(
        "sklearn.linear_model.LogisticRegression", {"C": 0.5}, standardize=True, seed=0
    )
    assert [name for name, _ in pipeline.steps] == ["standardscaler", "logisticregression"]
    assert pipeline.steps[1][1].C == 0.5


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("logistic_regresion", {}, "unknown estimator 'logistic_regresion'"),
        ("sklearn.linear_model.Nope", {}, "cannot import estimator"),
        ("sklearn.linear_model.LinearRegression", {}, "has no predict_proba"),
        ("logistic_regression", {"depth": 3}, r"takes no parameter\(s\) \['depth'\]"),
        # The class has predict_proba; an instance with the default hinge loss does not.
        ("sklearn.linear_model.SGDClassifier", {}, "no predict_proba for these parameters.*loss: log_loss"),
        ("sklearn.svm.SVC", {"probability": False}, "no predict_proba for these parameters"),
    ],
)
def test_build_errors(name, params, message):
    with pytest.raises(ModelError, match=message):
        build_estimator(name, params, standardize=False, seed=0)
