"""PriorClassifier: the model of a cold start, checked against hand-computed priors."""

import numpy as np
import pytest

from al_ray.errors import ModelError
from al_ray.models import PriorClassifier


def test_prior_is_label_frequency():
    model = PriorClassifier(("a", "b", "c"), np.array([1, 1, 2, 1]))

    proba = model.predict_proba(np.zeros((2, 5)))

    np.testing.assert_array_equal(proba, [[0.0, 0.75, 0.25], [0.0, 0.75, 0.25]])
    np.testing.assert_array_equal(model.predict(np.zeros((3, 5))), [1, 1, 1])


def test_no_labels_is_uniform_and_predicts_first_class():
    model = PriorClassifier(("a", "b", "c", "d"), np.array([], dtype=np.int64))

    np.testing.assert_array_equal(model.predict_proba(np.zeros((1, 2))), [[0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_array_equal(model.predict(np.zeros((2, 2))), [0, 0])
    assert model.fitted_estimators() == {}


def test_embed_is_features_as_float64():
    features = np.arange(6, dtype=np.float32).reshape(3, 2)

    embedded = PriorClassifier(("a", "b"), np.array([0])).embed(features)

    assert embedded.dtype == np.float64
    np.testing.assert_array_equal(embedded, features)


def test_label_out_of_range():
    with pytest.raises(ModelError, match=r"labels must be class indices in \[0, 2\), got values from 0 to 5"):
        PriorClassifier(("a", "b"), np.array([0, 5]))
