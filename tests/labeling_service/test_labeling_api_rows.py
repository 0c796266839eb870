"""Rows as the labeling page shows them, and the keyboard shortcuts of the classes."""

from __future__ import annotations

import gzip
import string

import numpy as np
import pandas as pd
import pytest
from labeling_service_support import write_human_config

from al_ray.config import load_config
from al_ray.data import LabeledData, load_shipped
from al_ray.data.shipped import default_datasets_root
from al_ray.errors import ConfigError
from al_ray.labeling.service.keys import shortcut_keys, skip_keys
from al_ray.labeling.service.rows import RowSource


def mnist_raw_image(index: int) -> list[int]:
    """Read image ``index`` from the IDX file itself: a 16-byte header, then 784 bytes per image."""
    path = default_datasets_root() / "mnist_test" / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    start = 16 + 784 * index
    return list(raw[start : start + 784])


def test_mnist_row_is_image_of_raw_pixels(mnist) -> None:
    rows = RowSource(mnist)

    payload = rows.row(7)

    assert rows.display == "image"
    assert (payload["height"], payload["width"], payload["channels"]) == (28, 28, 1)
    assert payload["pixels"] == mnist_raw_image(7)


def test_letters_row_is_table() -> None:
    letters = load_shipped("letter_recognition")
    rows = RowSource(letters)

    payload = rows.row(0)

    assert rows.display == "table"
    # Row 0 of letter-recognition.data: T,2,8,3,5,1,8,13,0,6,6,10,8,0,8,0,8
    assert payload == {
        "display": "table",
        "columns": [
            [name, float(value)]
            for name, value in zip(letters.feature_names, [2, 8, 3, 5, 1, 8, 13, 0, 6, 6, 10, 8, 0, 8, 0, 8])
        ],
    }


def test_text_rows_from_config(tmp_path) -> None:
    frame = pd.DataFrame(
        {
            "message": ["Free entry in a weekly draw", "See you at lunch", "Call now to claim"],
            "length": [27.0, 16.0, 17.0],
            "label": ["spam", "ham", "spam"],
        }
    )
    frame.to_csv(tmp_path / "sms.csv", index=False)
    config = load_config(
        write_human_config(
            tmp_path,
            data={"dataset": None, "path": "sms.csv", "label_column": "label", "feature_columns": ["length"]},
        )
    )

    rows = RowSource.from_config(config)

    assert rows.display == "text"
    assert rows.row(1) == {"display": "text", "name": "message", "text": "See you at lunch"}
    assert rows.values_of([2, 0]) == ["Call now to claim", "Free entry in a weekly draw"]


def test_image_shape_override_with_channels() -> None:
    features = np.arange(2 * 12, dtype=np.float32).reshape(2, 12)
    data = LabeledData("rgb", np.array([10, 11]), features, np.array([0, 1]), ("a", "b"), tuple(f"f{i}" for i in range(12)))

    rows = RowSource(data, image_shape=[2, 2, 3])
    payload = rows.row(11)

    assert rows.display == "image"
    assert payload["channels"] == 3
    # Values 12..23 are outside [0, 1] but inside [0, 255], so they are kept as they are.
    assert payload["pixels"] == list(range(12, 24))


def test_image_levels_stretched_outside_byte_range() -> None:
    features = np.array([[-1.0, 0.0, 1.0, 3.0]], dtype=np.float32)
    data = LabeledData("tiny", np.array([0]), features, np.array([0]), ("a",), ("p0", "p1", "p2", "p3"))

    payload = RowSource(data, image_shape=[2, 2]).row(0)

    # Stretched from -1..3 to 0..255: (v + 1) * 63.75, rounded half to even.
    assert payload["pixels"] == [0, 64, 128, 255]


def test_image_shape_that_does_not_fit_rejected(mnist) -> None:
    with pytest.raises(ConfigError, match=r"image_shape \[27, 28\] does not fit the 784 features"):
        RowSource(mnist, image_shape=[27, 28])


def test_image_display_without_shape_rejected() -> None:
    with pytest.raises(ConfigError, match="has no image shape"):
        RowSource(load_shipped("letter_recognition"), display="image")


def test_text_display_without_text_rejected(mnist) -> None:
    with pytest.raises(ConfigError, match="has no text column"):
        RowSource(mnist, display="text")


def test_table_display_forced_for_images(mnist) -> None:
    rows = RowSource(mnist, display="table")

    assert rows.row(0)["display"] == "table"
    assert len(rows.row(0)["columns"]) == 784


def test_unknown_row_rejected(mnist) -> None:
    with pytest.raises(Exception, match="not in dataset"):
        RowSource(mnist).row(10_000)


@pytest.mark.parametrize(
    ("classes", "keys", "skips"),
    [
        ([str(digit) for digit in range(10)], [str(digit) for digit in range(10)], ["s", "Escape"]),
        (list(string.ascii_uppercase), list(string.ascii_lowercase), ["Escape"]),
        (["ham", "spam"], ["1", "2"], ["s", "Escape"]),
        (["1", "cat", "dog"], ["1", "2", "3"], ["s", "Escape"]),
        (["S", "cat"], ["s", "1"], ["Escape"]),
    ],
)
def test_shortcut_keys(classes: list[str], keys: list[str], skips: list[str]) -> None:
    assert list(shortcut_keys(classes).values()) == keys
    assert skip_keys(classes) == skips


def test_shortcut_keys_run_out() -> None:
    classes = [f"class_{index:02d}" for index in range(40)]

    keys = shortcut_keys(classes)

    # 35 spare keys: 1-9, 0 and the 25 letters other than s.
    assert [keys[name] for name in classes[:3]] == ["1", "2", "3"]
    assert keys["class_34"] == "z"
    assert [keys[name] for name in classes[35:]] == [None] * 5
