"""load_table: CSV, Parquet and NPZ round trips written in tmp_path, and every bad input."""

import re

import numpy as np
import pandas as pd
import pytest

from al_ray.data import load_table
from al_ray.errors import DataError


def write_csv(path, text: str):
    path.write_text(text)
    return path


@pytest.fixture
def animals_csv(tmp_path):
    return write_csv(
        tmp_path / "animals.csv",
        "height,weight,species\n1.5,20,dog\n0.3,4,cat\n1.2,18,dog\n",
    )


def test_csv_round_trip(animals_csv):
    data = load_table(animals_csv, "species")

    assert data.name == "animals"
    assert data.row_ids.tolist() == [0, 1, 2]
    assert data.features.dtype == np.float32
    assert data.features.tolist() == [[1.5, 20.0], [0.30000001192092896, 4.0], [1.2000000476837158, 18.0]]
    assert data.feature_names == ("height", "weight")
    assert data.classes == ("cat", "dog")
    assert data.labels.tolist() == [1, 0, 1]


def test_csv_row_id_column(tmp_path):
    path = write_csv(tmp_path / "ids.csv", "id,x,y\n105,1,a\n7,2,b\n42,3,a\n")

    data = load_table(path, "y", row_id_column="id")

    assert data.row_ids.tolist() == [105, 7, 42]
    assert data.feature_names == ("x",)
    assert data.label_names([42]) == ["a"]


def test_csv_feature_columns_order(animals_csv):
    data = load_table(animals_csv, "species", feature_columns=["weight", "height"])

    assert data.feature_names == ("weight", "height")
    assert data.features[0].tolist() == [20.0, 1.5]


def test_csv_gzip_and_name(tmp_path):
    frame = pd.DataFrame({"x": [1, 2], "label": [0, 1]})
    path = tmp_path / "pool.csv.gz"
    frame.to_csv(path, index=False)

    data = load_table(path, "label", name="mine")

    assert data.name == "mine"
    assert data.classes == ("0", "1")


def test_file_format_override(tmp_path):
    path = write_csv(tmp_path / "table.txt", "x,label\n1,a\n2,b\n")

    data = load_table(path, "label", file_format="CSV")

    assert data.name == "table.txt"
    assert len(data) == 2


def test_integer_labels_as_text(tmp_path):
    path = write_csv(tmp_path / "digits.csv", "x,label\n1,7\n2,10\n3,2\n")

    data = load_table(path, "label")

    assert data.classes == ("10", "2", "7")
    assert data.label_names([0, 1, 2]) == ["7", "10", "2"]


def test_whole_float_labels_as_integers(tmp_path):
    path = write_csv(tmp_path / "floats.csv", "x,label\n1,7.0\n2,3.0\n")

    data = load_table(path, "label")

    assert data.classes == ("3", "7")


def test_fractional_float_labels_kept(tmp_path):
    path = write_csv(tmp_path / "floats.csv", "x,label\n1,0.5\n2,1.0\n")

    data = load_table(path, "label")

    assert data.classes == ("0.5", "1")


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame(
        {
            "row": np.array([3, 1, 2], dtype=np.int64),
            "a": np.array([0.5, 1.5, 2.5], dtype=np.float64),
            "b": np.array([1, 0, 1], dtype=np.int8),
            "flag": [True, False, True],
            "label": ["spam", "ham", "spam"],
        }
    )
    path = tmp_path / "mail.parquet"
    frame.to_parquet(path)

    data = load_table(path, "label", row_id_column="row")

    assert data.name == "mail"
    assert data.row_ids.tolist() == [3, 1, 2]
    assert data.feature_names == ("a", "b", "flag")
    assert data.features.tolist() == [[0.5, 1.0, 1.0], [1.5, 0.0, 0.0], [2.5, 1.0, 1.0]]
    assert data.label_names([3, 1]) == ["spam", "ham"]


def test_npz_round_trip(tmp_path):
    path = tmp_path / "points.npz"
    np.savez(
        path,
        features=np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int16),
        target=np.array(["b", "a", "b"]),
        ids=np.array([9, 8, 7]),
        feature_names=np.array(["u", "v"]),
    )

    data = load_table(path, "target", row_id_column="ids")

    assert data.name == "points"
    assert data.row_ids.tolist() == [9, 8, 7]
    assert data.features.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert data.feature_names == ("u", "v")
    assert data.label_names([9, 8]) == ["b", "a"]


def test_npz_x_key_and_default_names(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, X=np.zeros((2, 3)), y=np.array([1.0, 2.0]))

    data = load_table(path, "y", feature_columns=["feature_2", "feature_0"])

    assert data.feature_names == ("feature_2", "feature_0")
    assert data.classes == ("1", "2")
    assert data.row_ids.tolist() == [0, 1]


def test_npz_images_flattened(tmp_path):
    path = tmp_path / "images.npz"
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.savez(path, features=images, y=np.array([0, 1]))

    data = load_table(path, "y")

    assert data.image_shape == (3, 4)
    assert data.features.shape == (2, 12)
    assert data.features[1].tolist() == list(range(12, 24))
    assert data.feature_names[5] == "pixel_1_1"


def test_missing_file_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = re.escape(str(tmp_path.resolve() / "nope.csv"))

    with pytest.raises(DataError, match=rf"data file {expected} not found; check the path"):
        load_table("nope.csv", "label")


def test_unknown_suffix(tmp_path):
    path = write_csv(tmp_path / "table.json", "{}")

    with pytest.raises(DataError, match=r"cannot tell the format of .*table\.json from its suffix '\.json'; supported formats are csv .* Rename the file or pass file_format='csv', 'parquet' or 'npz'\."):
        load_table(path, "label")


def test_unknown_file_format(animals_csv):
    with pytest.raises(DataError, match=r"file_format 'xlsx' is not supported; use one of csv, parquet, npz\."):
        load_table(animals_csv, "species", file_format="xlsx")


def test_unknown_label_column(animals_csv):
    with pytest.raises(DataError, match=r"label column 'label' not found in .*animals\.csv; available columns: 'height', 'weight', 'species'\. Pass one of them as label_column\."):
        load_table(animals_csv, "label")


def test_unknown_row_id_column(animals_csv):
    with pytest.raises(DataError, match=r"row_id column 'id' not found in .*; available columns: 'height', 'weight', 'species'\. Pass one of them as row_id_column\."):
        load_table(animals_csv, "species", row_id_column="id")


def test_unknown_feature_column(animals_csv):
    with pytest.raises(DataError, match=r"feature columns 'age' not found in .*animals\.csv; available columns: 'height', 'weight', 'species'\."):
        load_table(animals_csv, "species", feature_columns=["height", "age"])


def test_label_as_feature_column(animals_csv):
    with pytest.raises(DataError, match=r"feature_columns contains 'species', which is the label or row_id column; remove it"):
        load_table(animals_csv, "species", feature_columns=["height", "species"])


def test_feature_columns_string(animals_csv):
    with pytest.raises(DataError, match=r"feature_columns must be a list of column names, got the string 'height'; write \['height'\]"):
        load_table(animals_csv, "species", feature_columns="height")


def test_non_numeric_feature(tmp_path):
    path = write_csv(tmp_path / "mixed.csv", "x,color,label\n1,red,a\n2,blue,b\n")

    with pytest.raises(DataError, match=r"feature column 'color' in .*mixed\.csv is not numeric \(dtype .*, value 'red' at row_id 0\)\. Encode 'color' as numbers or leave it out by passing feature_columns\."):
        load_table(path, "label")


def test_non_numeric_feature_skipped(tmp_path):
    path = write_csv(tmp_path / "mixed.csv", "x,color,label\n1,red,a\n2,blue,b\n")

    data = load_table(path, "label", feature_columns=["x"])

    assert data.features.tolist() == [[1.0], [2.0]]


def test_nan_features(tmp_path):
    path = write_csv(tmp_path / "gaps.csv", "id,x,z,label\n5,1,,a\n6,2,3,b\n7,,inf,a\n")

    with pytest.raises(DataError, match=r"features in .*gaps\.csv contain 3 NaN or inf values in 2 rows \(row_ids 5, 7\), in columns 'x', 'z'\. Impute those values or drop the rows before loading\."):
        load_table(path, "label", row_id_column="id")


def test_float32_overflow(tmp_path):
    path = write_csv(tmp_path / "huge.csv", "x,label\n1e39,a\n1,b\n")

    with pytest.raises(DataError, match=r"features in .*huge\.csv contain 1 values beyond the float32 range .* row_ids 0\. Rescale those features\."):
        load_table(path, "label")


def test_missing_labels(tmp_path):
    path = write_csv(tmp_path / "unlabeled.csv", "x,label\n1,a\n2,\n3, \n4,b\n")

    with pytest.raises(DataError, match=r"label column 'label' in .*unlabeled\.csv is missing, empty or non-finite in 2 rows \(row_ids 1, 2\)\. Fill in those labels or drop the rows"):
        load_table(path, "label")


def test_nan_numeric_labels(tmp_path):
    path = write_csv(tmp_path / "unlabeled.csv", "x,label\n1,1\n2,\n3,0\n")

    with pytest.raises(DataError, match=r"is missing, empty or non-finite in 1 rows \(row_ids 1\)"):
        load_table(path, "label")


def test_duplicate_row_ids(tmp_path):
    path = write_csv(tmp_path / "dupes.csv", "id,x,label\n1,0,a\n2,0,b\n1,0,a\n")

    with pytest.raises(DataError, match=r"row_id column 'id' in .*dupes\.csv must be unique, but 1 ids repeat: 1\. Fix the ids or pass row_id_column=None"):
        load_table(path, "label", row_id_column="id")


def test_fractional_row_ids(tmp_path):
    path = write_csv(tmp_path / "ids.csv", "id,x,label\n1.5,0,a\n2,0,b\n")

    with pytest.raises(DataError, match=r"row_id column 'id' in .*ids\.csv must hold integers, got 1\.5\."):
        load_table(path, "label", row_id_column="id")


def test_text_row_ids(tmp_path):
    path = write_csv(tmp_path / "ids.csv", "id,x,label\nr1,0,a\nr2,0,b\n")

    with pytest.raises(DataError, match=r"row_id column 'id' in .*ids\.csv must hold integers, got dtype .* \(first value 'r1'\)\. Pass row_id_column=None"):
        load_table(path, "label", row_id_column="id")


def test_empty_row_id(tmp_path):
    path = write_csv(tmp_path / "ids.csv", "id,x,label\n1,0,a\n,0,b\n")

    with pytest.raises(DataError, match=r"row_id column 'id' in .*ids\.csv is empty in 1 rows \(data rows 1\)"):
        load_table(path, "label", row_id_column="id")


def test_header_only_csv(tmp_path):
    path = write_csv(tmp_path / "header.csv", "x,label\n")

    with pytest.raises(DataError, match=r"header\.csv has no data rows; add rows to the file\."):
        load_table(path, "label")


def test_empty_csv(tmp_path):
    path = write_csv(tmp_path / "blank.csv", "")

    with pytest.raises(DataError, match=r"blank\.csv is empty; expected a header row and data rows\."):
        load_table(path, "label")


def test_no_feature_columns(tmp_path):
    path = write_csv(tmp_path / "labels.csv", "id,label\n1,a\n")

    with pytest.raises(DataError, match=r"has no feature columns besides the label column 'label' and the row_id column 'id'"):
        load_table(path, "label", row_id_column="id")


def test_damaged_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")

    with pytest.raises(DataError, match=r"broken\.parquet could not be read as parquet"):
        load_table(path, "label")


def test_npz_no_feature_key(tmp_path):
    path = tmp_path / "bare.npz"
    np.savez(path, data=np.zeros((2, 2)), y=np.array([0, 1]))

    with pytest.raises(DataError, match=r"bare\.npz has no feature array; expected the key 'features' or 'X', found keys 'data', 'y'\."):
        load_table(path, "y")


def test_npz_both_feature_keys(tmp_path):
    path = tmp_path / "both.npz"
    np.savez(path, features=np.zeros((2, 2)), X=np.zeros((2, 2)), y=np.array([0, 1]))

    with pytest.raises(DataError, match=r"both\.npz has both 'features' and 'X' arrays"):
        load_table(path, "y")


def test_npz_unknown_label_key(tmp_path):
    path = tmp_path / "keys.npz"
    np.savez(path, features=np.zeros((2, 2)), y=np.array([0, 1]))

    with pytest.raises(DataError, match=r"label array 'label' not found in .*keys\.npz; available keys: 'features', 'y'\. Pass one of them as label_column\."):
        load_table(path, "label")


def test_npz_label_length(tmp_path):
    path = tmp_path / "short.npz"
    np.savez(path, features=np.zeros((3, 2)), y=np.array([0, 1]))

    with pytest.raises(DataError, match=r"array 'y' in .*short\.npz must have shape \(3,\), one value per feature row; got shape \(2,\)\."):
        load_table(path, "y")


def test_npz_object_array(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, features=np.zeros((2, 2)), y=np.array(["a", None], dtype=object))

    with pytest.raises(DataError, match=r"array 'y' in .*objects\.npz contains Python objects, which al_ray does not unpickle"):
        load_table(path, "y")


def test_npz_nan_features(tmp_path):
    path = tmp_path / "gaps.npz"
    np.savez(path, features=np.array([[0.0, np.nan], [1.0, 1.0]]), y=np.array([0, 1]))

    with pytest.raises(DataError, match=r"contain 1 NaN or inf values in 1 rows \(row_ids 0\), in columns 'feature_1'"):
        load_table(path, "y")


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 cut short", b"plain text"])
def test_damaged_npz(tmp_path, content):
    path = tmp_path / "broken.npz"
    path.write_bytes(content)

    with pytest.raises(DataError, match=r"broken\.npz could not be read as an NPZ archive: "):
        load_table(path, "y")


def test_npz_unknown_row_id_key(tmp_path):
    path = tmp_path / "keys.npz"
    np.savez(path, features=np.zeros((2, 2)), y=np.array([0, 1]))

    with pytest.raises(DataError, match=r"row_id array 'id' not found in .*keys\.npz; available keys: 'features', 'y'\. Pass one of them as row_id_column\."):
        load_table(path, "y", row_id_column="id")


def test_npy_not_npz(tmp_path):
    path = tmp_path / "single.npz"
    with path.open("wb") as stream:
        np.save(stream, np.zeros(3))

    with pytest.raises(DataError, match=r"single\.npz contains a single \.npy array, not an NPZ archive"):
        load_table(path, "y")
