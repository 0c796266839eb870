"""The shipped real datasets: contents, read-only caching and checksum checks."""

import re
import shutil
import string
from pathlib import Path

import numpy as np
import pytest

from al_ray.data import SHIPPED_DATASETS, load_shipped
from al_ray.data.shipped import (
    CREDIT_FEATURE_NAMES,
    LETTER_FEATURE_NAMES,
    default_datasets_root,
    load_shipped_texts,
)
from al_ray.errors import DataError

# Per-digit counts of the MNIST test set, as recorded in its PROVENANCE.md.
MNIST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def provenance_sha256(folder: Path) -> dict[str, str]:
    """Read the file -> sha256 table from a dataset's PROVENANCE.md."""
    rows = re.findall(r"^\| (\S+) \| [\d,]+ \| ([0-9a-f]{64}) \|", (folder / "PROVENANCE.md").read_text(), re.M)
    return dict(rows)


def copy_dataset(name: str, root: Path) -> Path:
    folder = root / name
    shutil.copytree(default_datasets_root() / name, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def test_mnist_shapes_and_scale():
    data = load_shipped("mnist_test")

    assert data.name == "mnist_test"
    assert data.features.shape == (10_000, 784)
    assert data.features.dtype == np.float32
    assert data.features.flags.c_contiguous
    assert data.features.min() == 0.0
    assert data.features.max() == 1.0
    assert data.image_shape == (28, 28)
    assert data.classes == tuple("0123456789")
    assert data.feature_names[0] == "pixel_0_0"
    assert data.feature_names[-1] == "pixel_27_27"


def test_mnist_row_ids_and_labels():
    data = load_shipped("mnist_test")

    np.testing.assert_array_equal(data.row_ids, np.arange(10_000))
    assert data.row_ids.dtype == np.int64
    assert np.bincount(data.labels).tolist() == MNIST_CLASS_COUNTS
    # The first five test images are the digits 7, 2, 1, 0, 4.
    assert data.label_names([0, 1, 2, 3, 4]) == ["7", "2", "1", "0", "4"]


def test_mnist_pixel_values():
    data = load_shipped("mnist_test")
    image = data.features[0].reshape(28, 28)

    # Grey levels 84 and 254 of the first image, divided by 255.
    assert image[7, 6] == np.float32(84 / 255)
    assert image[8, 7] == np.float32(254 / 255)


def test_letters_shapes_and_counts():
    data = load_shipped("letter_recognition")
    counts = dict(zip(data.classes, np.bincount(data.labels).tolist()))

    assert data.features.shape == (20_000, 16)
    assert data.features.dtype == np.float32
    assert data.classes == tuple(string.ascii_uppercase)
    assert data.feature_names == LETTER_FEATURE_NAMES
    assert data.image_shape is None
    assert sum(counts.values()) == 20_000
    assert counts["A"] == 789
    assert counts["B"] == 766
    assert counts["U"] == 813
    assert min(counts.values()) == 734
    assert max(counts.values()) == 813


def test_letters_rows_in_file_order():
    data = load_shipped("letter_recognition")

    np.testing.assert_array_equal(data.row_ids, np.arange(20_000))
    # First line: T,2,8,3,5,1,8,13,0,6,6,10,8,0,8,0,8. Last line: A,4,9,6,6,2,9,5,3,1,8,1,8,2,7,2,8.
    assert data.label_names([0, 19_999]) == ["T", "A"]
    assert data.features[0].tolist() == [2, 8, 3, 5, 1, 8, 13, 0, 6, 6, 10, 8, 0, 8, 0, 8]
    assert data.features[-1].tolist() == [4, 9, 6, 6, 2, 9, 5, 3, 1, 8, 1, 8, 2, 7, 2, 8]
    assert data.features.min() == 0
    assert data.features.max() == 15


def test_letter_feature_names_match_names_file():
    text = (default_datasets_root() / "letter_recognition" / "letter-recognition.names").read_text()
    section = text.split("7. Attribute Information:")[1].split("8. Missing Attribute Values")[0]
    names = re.findall(r"^\s*\d+\.\s+(\S+)", section, re.M)

    assert names[0] == "lettr"
    assert tuple(names[1:]) == LETTER_FEATURE_NAMES


def test_letter_counts_match_names_file():
    text = (default_datasets_root() / "letter_recognition" / "letter-recognition.names").read_text()
    section = text.split("9. Class Distribution:")[1]
    expected = {letter: int(count) for count, letter in re.findall(r"(\d+) ([A-Z])\b", section)}
    data = load_shipped("letter_recognition")

    assert len(expected) == 26
    assert dict(zip(data.classes, np.bincount(data.labels).tolist())) == expected


@pytest.mark.parametrize("name", sorted(SHIPPED_DATASETS))
def test_pinned_sha256_match_provenance(name):
    folder = default_datasets_root() / name

    assert dict(SHIPPED_DATASETS[name].sha256) == provenance_sha256(folder)
    assert {path.name for path in folder.iterdir()} == set(SHIPPED_DATASETS[name].sha256) | {"PROVENANCE.md"}


@pytest.mark.parametrize("name", sorted(SHIPPED_DATASETS))
def test_registry_sizes_match_data(name):
    spec = SHIPPED_DATASETS[name]
    data = load_shipped(name)

    assert len(data) == spec.n_rows
    assert data.n_features == spec.n_features
    assert data.n_classes == spec.n_classes


@pytest.mark.parametrize("name", sorted(SHIPPED_DATASETS))
def test_arrays_read_only(name):
    data = load_shipped(name)

    for array in (data.row_ids, data.features, data.labels):
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1
        with pytest.raises(ValueError, match="cannot set WRITEABLE flag"):
            array.flags.writeable = True


def test_cache_returns_same_object():
    assert load_shipped("letter_recognition") is load_shipped("letter_recognition")


def test_unknown_name_lists_datasets():
    with pytest.raises(DataError, match=r"unknown shipped dataset 'mnist'; available: credit_default, elec2, letter_recognition, mnist_test, sms_spam\."):
        load_shipped("mnist")


def test_copied_root_loads(tmp_path):
    copy_dataset("letter_recognition", tmp_path)

    data = load_shipped("letter_recognition", root=tmp_path)

    assert len(data) == 20_000
    assert data is not load_shipped("letter_recognition")


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        ("mnist_test", "t10k-images-idx3-ubyte.gz"),
        ("mnist_test", "t10k-labels-idx1-ubyte.gz"),
        ("letter_recognition", "letter-recognition.data"),
        ("credit_default", "UCI_Credit_Card.csv"),
        ("sms_spam", "SMSSpamCollection"),
    ],
)
def test_damaged_byte_detected(tmp_path, name, file_name):
    path = copy_dataset(name, tmp_path) / file_name
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0x01
    path.write_bytes(bytes(content))

    with pytest.raises(DataError, match=rf"shipped dataset file {re.escape(str(path.resolve()))} is damaged: its sha256 is [0-9a-f]{{64}}, expected [0-9a-f]{{64}}\. Restore it from git"):
        load_shipped(name, root=tmp_path)


def test_missing_file_detected(tmp_path):
    path = copy_dataset("mnist_test", tmp_path) / "t10k-labels-idx1-ubyte.gz"
    path.unlink()

    with pytest.raises(DataError, match=rf"shipped dataset 'mnist_test' is missing its file {re.escape(str(path.resolve()))}\. Restore it from git"):
        load_shipped("mnist_test", root=tmp_path)


def test_credit_shapes_and_counts():
    data = load_shipped("credit_default")

    assert data.features.shape == (30_000, 23)
    assert data.features.dtype == np.float32
    assert data.classes == ("0", "1")
    assert data.feature_names == CREDIT_FEATURE_NAMES
    assert "ID" not in data.feature_names
    # Class balance as recorded in its PROVENANCE.md: 23,364 without and 6,636 with a default.
    assert np.bincount(data.labels).tolist() == [23_364, 6_636]
    np.testing.assert_array_equal(data.row_ids, np.arange(30_000))


def test_credit_rows_in_file_order():
    data = load_shipped("credit_default")

    # File line 2, ID 1, without its ID and label: 1,20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1.
    assert data.features[0].tolist() == [
        20000, 2, 2, 1, 24, 2, 2, -1, -1, -2, -2, 3913, 3102, 689, 0, 0, 0, 0, 689, 0, 0, 0, 0,
    ]  # fmt: skip
    assert data.label_names([0]) == ["1"]
    # ID 7 writes its credit limit in exponent form, 5.00E+05.
    assert data.features[6, 0] == 500_000
    assert data.label_names([6]) == ["0"]


def test_credit_bad_header_rejected(tmp_path):
    folder = tmp_path / "credit_default"
    folder.mkdir()
    (folder / "UCI_Credit_Card.csv").write_text("ID,LIMIT_BAL,Y\r\n1,20000,1\r\n", encoding="ascii")

    with pytest.raises(DataError, match=r"must start with the header ID,X1,X2,.*,X23,Y; found 'ID,LIMIT_BAL,Y'"):
        SHIPPED_DATASETS["credit_default"].parse(folder, "credit_default")


def test_credit_bad_label_rejected(tmp_path):
    folder = tmp_path / "credit_default"
    folder.mkdir()
    header = ",".join(["ID", *(f"X{index}" for index in range(1, 24)), "Y"])
    row = ",".join(["1", *["0"] * 23, "2"])
    (folder / "UCI_Credit_Card.csv").write_text(f"{header}\r\n{row}\r\n", encoding="ascii")

    with pytest.raises(DataError, match=r"line 2 is .*; expected 25 numbers ending in the label 0 or 1\."):
        SHIPPED_DATASETS["credit_default"].parse(folder, "credit_default")


def test_sms_shapes_and_counts():
    data = load_shipped("sms_spam")
    norms = np.linalg.norm(data.features, axis=1)

    assert data.features.shape == (5_574, 4_096)
    assert data.features.dtype == np.float32
    assert data.classes == ("ham", "spam")
    assert data.feature_names[0] == "hash_0000"
    assert data.feature_names[-1] == "hash_4095"
    # Class balance as recorded in its PROVENANCE.md.
    assert np.bincount(data.labels).tolist() == [4_827, 747]
    assert data.features.min() == 0.0
    # Every message has unit length except the 4 that hold no word of two or more characters.
    assert int(np.sum(norms == 0.0)) == 4
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-6)


def test_sms_rows_in_file_order():
    data = load_shipped("sms_spam")

    assert data.label_names([0, 2, 5_573]) == ["ham", "spam", "ham"]


def test_sms_texts_by_row_id():
    name, texts = load_shipped_texts("sms_spam")

    assert name == "message"
    assert len(texts) == 5_574
    assert texts[0].startswith("Go until jurong point, crazy..")
    assert texts[5_573] == "Rofl. Its true to its name"
    with pytest.raises(TypeError):
        texts[0] = "changed"


def test_texts_absent_for_numeric_datasets():
    assert load_shipped_texts("mnist_test") is None
    assert load_shipped_texts("credit_default") is None


def test_texts_unknown_name_rejected():
    with pytest.raises(DataError, match=r"unknown shipped dataset 'sms'; available: "):
        load_shipped_texts("sms")


def test_texts_damaged_file_detected(tmp_path):
    path = copy_dataset("sms_spam", tmp_path) / "SMSSpamCollection"
    content = bytearray(path.read_bytes())
    content[100] ^= 0x01
    path.write_bytes(bytes(content))

    with pytest.raises(DataError, match=r"SMSSpamCollection is damaged: its sha256 is"):
        load_shipped_texts("sms_spam", root=tmp_path)


def test_sms_bad_line_rejected(tmp_path):
    folder = tmp_path / "sms_spam"
    folder.mkdir()
    (folder / "SMSSpamCollection").write_text("ham\tHello there\nmaybe\tWhat?\n", encoding="utf-8")

    with pytest.raises(DataError, match=r"line 2 is 'maybe\\tWhat\?'; expected ham or spam, a tab, then the message\."):
        SHIPPED_DATASETS["sms_spam"].parse(folder, "sms_spam")
