"""LabeledData: validation on construction, read-only arrays, look-up by row_id."""

import numpy as np
import pytest

from al_ray.data import LabeledData
from al_ray.errors import DataError


def make_toy(**overrides) -> LabeledData:
    """Four rows with ids 10, 20, 30, 40 and two classes."""
    fields = {
        "name": "toy",
        "row_ids": np.array([10, 20, 30, 40]),
        "features": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]),
        "labels": np.array([0, 1, 1, 0]),
        "classes": ("cat", "dog"),
        "feature_names": ("height", "weight"),
    }
    fields.update(overrides)
    return LabeledData(**fields)


def test_construction_normalizes_dtypes():
    data = make_toy(row_ids=np.array([10, 20, 30, 40], dtype=np.int32), features=np.asfortranarray(np.ones((4, 2))))

    assert data.row_ids.dtype == np.int64
    assert data.labels.dtype == np.int64
    assert data.features.dtype == np.float32
    assert data.features.flags.c_contiguous
    assert len(data) == 4
    assert data.n_features == 2
    assert data.n_classes == 2


def test_arrays_read_only_caller_array_not():
    features = np.zeros((4, 2))
    data = make_toy(features=features)

    assert not data.features.flags.writeable
    assert not data.row_ids.flags.writeable
    assert not data.labels.flags.writeable
    assert features.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        data.features[0, 0] = 1.0


def test_subset_by_row_id_not_position():
    data = make_toy()

    part = data.subset([40, 10])

    assert part.row_ids.tolist() == [40, 10]
    assert part.features.tolist() == [[7.0, 8.0], [1.0, 2.0]]
    assert part.labels.tolist() == [0, 0]
    assert part.classes == ("cat", "dog")
    assert part.feature_names == ("height", "weight")


def test_subset_empty():
    part = make_toy().subset(np.array([], dtype=np.int64))

    assert len(part) == 0
    assert part.features.shape == (0, 2)
    assert part.classes == ("cat", "dog")


def test_subset_unknown_ids():
    with pytest.raises(DataError, match=r"2 row_ids are not in dataset 'toy': 5, 99\. Pass only ids from its row_ids\."):
        make_toy().subset([10, 5, 99])


def test_subset_repeated_ids():
    with pytest.raises(DataError, match=r"row_ids of a subset of dataset 'toy' must be unique, but these repeat: 20\."):
        make_toy().subset([20, 30, 20])


def test_subset_float_ids():
    with pytest.raises(DataError, match=r"row_ids of the subset must hold integers, got dtype float64"):
        make_toy().subset([10.0, 20.0])


def test_positions_and_label_names():
    data = make_toy()

    assert data.positions([30, 10]).tolist() == [2, 0]
    assert data.label_names([30, 10, 40]) == ["dog", "cat", "cat"]


def test_label_names_unknown_id():
    with pytest.raises(DataError, match=r"1 row_ids are not in dataset 'toy': 41\."):
        make_toy().label_names([41])


def test_duplicate_row_ids():
    with pytest.raises(DataError, match=r"row_ids of dataset 'toy' must be unique, but 1 ids repeat: 20\. Give every row its own id\."):
        make_toy(row_ids=np.array([10, 20, 20, 40]))


def test_features_shape_mismatch():
    with pytest.raises(DataError, match=r"features of dataset 'toy' must have shape \(4, n_features\) to match 4 row_ids, got shape \(3, 2\)\."):
        make_toy(features=np.zeros((3, 2)))


def test_non_finite_features():
    features = np.ones((4, 2))
    features[1, 0] = np.nan
    features[3, 1] = np.inf

    with pytest.raises(DataError, match=r"features of dataset 'toy' contain 2 NaN or inf values in 2 rows \(row_ids 20, 40\)\. Impute those values or drop the rows\."):
        make_toy(features=features)


def test_label_out_of_range():
    with pytest.raises(DataError, match=r"labels of dataset 'toy' must be indices in \[0, 1\] for 2 classes, got 2, -1\."):
        make_toy(labels=np.array([0, 2, -1, 1]))


def test_float_labels_rejected():
    with pytest.raises(DataError, match=r"labels of dataset 'toy' must be integer indices into classes, got dtype float64\."):
        make_toy(labels=np.array([0.0, 1.0, 1.0, 0.0]))


def test_unsorted_classes():
    with pytest.raises(DataError, match=r"class names of dataset 'toy' must be unique and sorted, got dog, cat\."):
        make_toy(classes=("dog", "cat"))


def test_feature_names_count():
    with pytest.raises(DataError, match=r"dataset 'toy' has 2 feature columns but 1 feature names; give one name per column\."):
        make_toy(feature_names=("height",))


def test_image_shape_mismatch():
    with pytest.raises(DataError, match=r"image_shape \(2, 2\) of dataset 'toy' does not match 2 features"):
        make_toy(image_shape=(2, 2))


def test_empty_name():
    with pytest.raises(DataError, match=r"dataset name must be a non-empty string, got ''\."):
        make_toy(name="")
