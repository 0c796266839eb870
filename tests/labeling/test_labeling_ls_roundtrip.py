"""Label Studio export and import: a round trip through files shaped as Label Studio writes them."""

from __future__ import annotations

import base64
import io
import json
import logging
from datetime import UTC, datetime
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from al_ray.labeling.aggregation import Vote
from al_ray.labeling.labelstudio import (
    CHOICES_NAME,
    export_tasks,
    import_annotations,
    labeling_config_path,
    read_annotations,
)
from al_ray.labeling.png import encode_png, row_to_pixels

CLASSES = ["0", "1", "2"]


def image_rows() -> dict[int, np.ndarray]:
    # 4 x 4 images with grey levels 0..255, as MNIST stores them.
    rng = np.random.default_rng(0)
    return {row_id: rng.integers(0, 256, size=16).astype(np.float32) for row_id in (10, 11, 12)}


def features_from(rows: dict[int, object]):
    return lambda row_ids: [rows[row_id] for row_id in row_ids]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def annotated(tasks: list[dict], answers: dict[int, list[dict]]) -> list[dict]:
    """Return ``tasks`` as Label Studio exports them once annotated.

    ``answers`` maps a row_id to annotations given as
    ``{"user": <completed_by>, "label": ..., "at": seconds, "cancelled": bool}``.
    """
    exported = []
    annotation_id = 100
    for task_id, task in enumerate(tasks, start=1):
        annotations = []
        for answer in answers.get(task["data"]["row_id"], []):
            annotation_id += 1
            result = []
            if answer.get("label") is not None:
                result.append(
                    {
                        "id": f"r{annotation_id}",
                        "from_name": CHOICES_NAME,
                        "to_name": "image",
                        "type": "choices",
                        "origin": "manual",
                        "value": {"choices": [answer["label"]]},
                    }
                )
            annotations.append(
                {
                    "id": annotation_id,
                    "completed_by": answer["user"],
                    "result": result,
                    "was_cancelled": answer.get("cancelled", False),
                    "ground_truth": False,
                    "created_at": iso(answer["at"] - 30),
                    "updated_at": iso(answer["at"]),
                    "lead_time": 4.2,
                    "task": task_id,
                    "project": 3,
                }
            )
        exported.append(
            {
                "id": task_id,
                "annotations": annotations,
                "drafts": [],
                "predictions": [],
                "data": task["data"],
                "meta": {},
                "created_at": iso(1_700_000_000),
                "updated_at": iso(1_700_000_100),
                "project": 3,
            }
        )
    return exported


def test_export_image_tasks_and_config(tmp_path):
    rows = image_rows()
    items = [{"row_id": row_id, "item_id": index, "round_index": 2, "kind": "task"} for index, row_id in enumerate(rows)]
    path = tmp_path / "export" / "tasks.json"

    written = export_tasks(items, path, classes=CLASSES, display="auto", features_of=features_from(rows), image_shape=(4, 4))

    assert written == 3
    tasks = json.loads(path.read_text(encoding="utf-8"))
    assert [task["data"]["row_id"] for task in tasks] == [10, 11, 12]
    assert tasks[0]["data"]["item_id"] == 0
    assert tasks[0]["data"]["round_index"] == 2
    assert "kind" not in tasks[0]["data"]  # whether a row is gold stays hidden
    prefix = "data:image/png;base64,"
    assert tasks[0]["data"]["image"].startswith(prefix)
    decoded = Image.open(io.BytesIO(base64.b64decode(tasks[0]["data"]["image"][len(prefix):])))
    assert decoded.mode == "L"
    assert decoded.size == (112, 112)
    # Each source pixel becomes a 28 x 28 block (112 / 4) of the same grey level.
    pixels = np.asarray(decoded)
    assert np.array_equal(pixels[::28, ::28], rows[10].reshape(4, 4).astype(np.uint8))

    config = ElementTree.fromstring(labeling_config_path(path).read_text(encoding="utf-8"))
    image_tag = config.find("Image")
    choices = config.find("Choices")
    assert image_tag is not None and image_tag.get("value") == "$image"
    assert choices is not None
    assert choices.get("name") == CHOICES_NAME
    assert choices.get("toName") == "image"
    assert choices.get("choice") == "single"
    assert [choice.get("value") for choice in choices.findall("Choice")] == CLASSES
    assert not list(path.parent.glob(".*.tmp"))


def test_round_trip_votes(tmp_path, caplog):
    rows = image_rows()
    tasks_path = tmp_path / "tasks.json"
    export_tasks([{"row_id": row_id} for row_id in rows], tasks_path, classes=CLASSES, display="image", features_of=features_from(rows), image_shape=(4, 4))
    tasks = json.loads(tasks_path.read_text(encoding="utf-8"))
    answers = {
        10: [
            {"user": 1, "label": "2", "at": 1_700_000_500},
            {"user": {"id": 2, "email": "bo@example.org", "first_name": "", "last_name": ""}, "label": "1", "at": 1_700_000_600},
        ],
        11: [
            {"user": 1, "label": "0", "at": 1_700_000_700},
            {"user": 2, "label": None, "at": 1_700_000_800, "cancelled": True},
        ],
        12: [{"user": 2, "label": None, "at": 1_700_000_900}],  # submitted without a choice
    }
    export_path = tmp_path / "project-3-at-2026.json"
    export_path.write_text(json.dumps(annotated(tasks, answers)), encoding="utf-8")

    with caplog.at_level(logging.INFO, logger="al_ray.labeling.labelstudio"):
        report = read_annotations(export_path, classes=CLASSES)

    assert report.votes == [
        Vote(10, "labelstudio:1", "2", 1_700_000_500.0),
        Vote(10, "labelstudio:2", "1", 1_700_000_600.0),
        Vote(11, "labelstudio:1", "0", 1_700_000_700.0),
    ]
    assert report.tasks == 3
    assert report.cancelled == 1
    assert report.empty == 1
    assert report.superseded == []
    assert "Skipped 1 cancelled and 1 empty" in caplog.text
    assert import_annotations(export_path, classes=CLASSES) == report.votes


def test_import_keeps_latest_annotation_of_annotator(tmp_path):
    tasks = [{"data": {"row_id": 5}}]
    answers = {5: [{"user": 7, "label": "1", "at": 2_000}, {"user": 7, "label": "2", "at": 3_000}, {"user": 7, "label": "0", "at": 1_000}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(annotated(tasks, answers)), encoding="utf-8")

    report = read_annotations(path, classes=CLASSES)

    assert report.votes == [Vote(5, "labelstudio:7", "2", 3_000.0)]
    assert report.superseded == [(5, "labelstudio:7")]


def test_import_email_only_user_and_string_row_id(tmp_path):
    export = [
        {
            "id": 4,
            "data": {"row_id": "42"},
            "annotations": [
                {
                    "completed_by": {"email": "ann@example.org"},
                    "result": [{"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": ["1"]}}],
                    "was_cancelled": False,
                    "updated_at": "2021-03-09T22:16:08.728378",
                }
            ],
        }
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")

    votes = import_annotations(path, classes=CLASSES)

    expected_time = datetime(2021, 3, 9, 22, 16, 8, 728378, tzinfo=UTC).timestamp()
    assert votes == [Vote(42, "labelstudio:ann@example.org", "1", expected_time)]


def test_import_from_name_selects_tag(tmp_path):
    result = [
        {"type": "choices", "from_name": "quality", "value": {"choices": ["blurry"]}},
        {"type": "choices", "from_name": "label", "value": {"choices": ["2"]}},
    ]
    export = [{"id": 1, "data": {"row_id": 3}, "annotations": [{"completed_by": 1, "result": result}]}]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")

    assert import_annotations(path, classes=CLASSES, from_name="label") == [Vote(3, "labelstudio:1", "2")]


def test_export_text_tasks(tmp_path):
    texts = {1: "Free entry in 2 a wkly comp", 2: "Ok lar... Joking wif u oni"}
    path = tmp_path / "sms.json"

    export_tasks([{"row_id": 1}, {"row_id": 2}], path, classes=["ham", "spam"], display="auto", features_of=features_from(texts))

    tasks = json.loads(path.read_text(encoding="utf-8"))
    assert tasks == [{"data": {"row_id": 1, "text": texts[1]}}, {"data": {"row_id": 2, "text": texts[2]}}]
    config = ElementTree.fromstring(labeling_config_path(path).read_text(encoding="utf-8"))
    assert config.find("Text").get("value") == "$text"
    assert config.find("Choices").get("toName") == "text"


def test_export_table_tasks(tmp_path):
    rows = {7: np.array([1.5, -2.0, 0.1234567891], dtype=np.float64), 8: np.array([0.0, np.nan, 3.0])}
    path = tmp_path / "table.json"

    export_tasks([{"row_id": 7}, {"row_id": 8}], path, classes=CLASSES, display="table", features_of=features_from(rows), feature_names=["width", "height", "ratio"])

    tasks = json.loads(path.read_text(encoding="utf-8"))
    assert tasks[0]["data"]["table"] == {"width": 1.5, "height": -2.0, "ratio": 0.1234568}
    assert tasks[1]["data"]["table"] == {"width": 0.0, "height": None, "ratio": 3.0}


def test_export_escapes_class_names_in_config(tmp_path):
    classes = ['a<b', 'say "hi"', "café & co"]
    path = tmp_path / "tasks.json"

    export_tasks([{"row_id": 1}], path, classes=classes, display="text", features_of=lambda ids: ["t"])

    config = ElementTree.fromstring(labeling_config_path(path).read_text(encoding="utf-8"))
    assert [choice.get("value") for choice in config.iter("Choice")] == classes


def test_export_no_items_writes_empty_list(tmp_path):
    path = tmp_path / "tasks.json"

    written = export_tasks([], path, classes=CLASSES, display="table", features_of=lambda ids: pytest.fail("not called"))

    assert written == 0
    assert json.loads(path.read_text(encoding="utf-8")) == []


def test_png_encoder_matches_pillow_decoding():
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20

    decoded = Image.open(io.BytesIO(encode_png(pixels)))

    assert decoded.size == (4, 3)
    assert np.array_equal(np.asarray(decoded), pixels)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # [0, 1] is scaled by 255 (127.5 and 63.75 round to 128 and 64).
        ([0.0, 0.5, 1.0, 0.25], [[0, 128], [255, 64]]),
        # [0, 255] is kept as grey levels.
        ([0.0, 7.0, 200.0, 255.0], [[0, 7], [200, 255]]),
        # Other ranges are stretched: (x + 1) * 255 / 4.
        ([-1.0, 0.0, 1.0, 3.0], [[0, 64], [128, 255]]),
        # A constant row outside [0, 255] is black.
        ([-5.0, -5.0, -5.0, -5.0], [[0, 0], [0, 0]]),
    ],
)
def test_row_to_pixels_scaling(row, expected):
    pixels = row_to_pixels(np.array(row), (2, 2), min_side_px=2)

    assert pixels.dtype == np.uint8
    assert pixels.tolist() == expected


def test_row_to_pixels_enlarges_to_min_side():
    pixels = row_to_pixels(np.arange(6.0), (2, 3), min_side_px=5)

    # The factor is ceil(5 / 2) = 3, so 2 x 3 becomes 6 x 9.
    assert pixels.shape == (6, 9)
