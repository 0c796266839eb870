"""Label Studio import and export: every malformed input fails with a message that names where and how to fix it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from al_ray.errors import DataError
from al_ray.labeling.labelstudio import (
    export_tasks,
    import_annotations,
    labeling_config_path,
)

CLASSES = ["0", "1", "2"]


def choice(*labels: str, from_name: str = "label") -> dict:
    return {"type": "choices", "from_name": from_name, "to_name": "image", "value": {"choices": list(labels)}}


def good_task(row_id: int = 1, task_id: int = 1) -> dict:
    return {"id": task_id, "data": {"row_id": row_id}, "annotations": [{"completed_by": 1, "result": [choice("1")]}]}


def write(tmp_path, content) -> str:
    path = tmp_path / "export.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


def test_import_malformed_json(tmp_path):
    path = write(tmp_path, '[{"id": 1, "data": {"row_id": 1},')

    with pytest.raises(DataError, match=r"is not valid JSON: .* at line 1, column \d+\. Export the project from Label Studio with the JSON format"):
        import_annotations(path, classes=CLASSES)


def test_import_wrong_top_level_type(tmp_path):
    path = write(tmp_path, good_task())

    with pytest.raises(DataError, match=r"contains a JSON dict, but a Label Studio JSON export is a list of tasks"):
        import_annotations(path, classes=CLASSES)


def test_import_task_not_an_object(tmp_path):
    path = write(tmp_path, [good_task(), "row 2"])

    with pytest.raises(DataError, match=r"task 1 in .* is a JSON str, not an object"):
        import_annotations(path, classes=CLASSES)


def test_import_missing_row_id(tmp_path):
    task = good_task(task_id=17)
    del task["data"]["row_id"]
    path = write(tmp_path, [good_task(), task])

    with pytest.raises(DataError, match=r"task 1 \(Label Studio id 17\) in .* has no data.row_id\. Import only tasks that al-ray exported"):
        import_annotations(path, classes=CLASSES)


def test_import_non_integer_row_id(tmp_path):
    task = good_task()
    task["data"]["row_id"] = 1.5
    path = write(tmp_path, [task])

    with pytest.raises(DataError, match=r"task 0 \(Label Studio id 1\) .* has data.row_id 1.5; row_id must be an integer"):
        import_annotations(path, classes=CLASSES)


def test_import_label_not_in_classes(tmp_path):
    task = good_task(row_id=4, task_id=9)
    task["annotations"][0]["result"] = [choice("7")]
    path = write(tmp_path, [good_task(), task])

    with pytest.raises(DataError, match=r"annotation 0 of task 1 \(Label Studio id 9\) .* chose '7', which is not a class; classes are \['0', '1', '2'\]"):
        import_annotations(path, classes=CLASSES)


def test_import_more_than_one_choice(tmp_path):
    task = good_task()
    task["annotations"][0]["result"] = [choice("1", "2")]
    path = write(tmp_path, [task])

    with pytest.raises(DataError, match=r"annotation 0 of task 0 .* chose 2 classes \['1', '2'\]; each row takes one\. Set choice=\"single\""):
        import_annotations(path, classes=CLASSES)


def test_import_two_choices_tags_need_from_name(tmp_path):
    task = good_task()
    task["annotations"][0]["result"] = [choice("1"), choice("2", from_name="second")]
    path = write(tmp_path, [task])

    with pytest.raises(DataError, match=r"has 2 Choices results \(from_name \['label', 'second'\]\); pass from_name"):
        import_annotations(path, classes=CLASSES)


def test_import_missing_completed_by(tmp_path):
    task = good_task()
    del task["annotations"][0]["completed_by"]
    path = write(tmp_path, [task])

    with pytest.raises(DataError, match=r"annotation 0 of task 0 .* has completed_by None; expected a user id"):
        import_annotations(path, classes=CLASSES)


def test_import_annotations_not_a_list(tmp_path):
    task = good_task()
    task["annotations"] = {"completed_by": 1}
    path = write(tmp_path, [task])

    with pytest.raises(DataError, match=r"task 0 .* has annotations .*; expected a list\. Export with the JSON format, not JSON_MIN"):
        import_annotations(path, classes=CLASSES)


def test_import_bad_timestamp(tmp_path):
    task = good_task()
    task["annotations"][0]["updated_at"] = "yesterday"
    path = write(tmp_path, [task])

    with pytest.raises(DataError, match=r"has the timestamp 'yesterday', which is not ISO 8601"):
        import_annotations(path, classes=CLASSES)


def test_import_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"Label Studio export .*missing.json does not exist"):
        import_annotations(tmp_path / "missing.json", classes=CLASSES)


def test_import_task_without_annotations_key(tmp_path):
    # Exports of every task include unannotated ones; no key means no annotations.
    path = write(tmp_path, [{"id": 1, "data": {"row_id": 1}}])

    assert import_annotations(path, classes=CLASSES) == []


def test_export_error_writes_nothing(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text("previous export\n", encoding="utf-8")

    with pytest.raises(DataError, match=r"features_of returned 1 values for 2 row_ids"):
        export_tasks([{"row_id": 1}, {"row_id": 2}], path, classes=CLASSES, display="table", features_of=lambda ids: [np.zeros(2)])

    assert path.read_text(encoding="utf-8") == "previous export\n"
    assert not labeling_config_path(path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.json"]


@pytest.mark.parametrize(
    ("items", "kwargs", "message"),
    [
        ([{"row_id": 1}, {"row_id": 1}], {}, r"row_ids \[1\] appear in more than one item"),
        ([{"item_id": 3}], {}, r"item 0 to export must be a mapping with a row_id"),
        ([{"row_id": "1"}], {}, r"item 0 has row_id '1'; row_id must be an integer"),
        ([{"row_id": 1}], {"display": "video"}, r"display must be one of \['auto', 'image', 'text', 'table'\], got 'video'"),
        ([{"row_id": 1}], {"display": "image"}, r"display image needs image_shape"),
        ([{"row_id": 1}], {"display": "image", "image_shape": (3, 3)}, r"an image row of 4 values does not fit image_shape \(3, 3\)"),
        ([{"row_id": 1}], {"display": "text"}, r"row_id 1 is shown as text, but features_of returned ndarray"),
        ([{"row_id": 1}], {"feature_names": ["only_one"]}, r"row_id 1 has 4 features but 1 feature names"),
        ([{"row_id": 1}], {"features_of": lambda ids: ["spam text"]}, r"row_id 1 is shown as a table, but features_of returned str 'spam text'"),
        (
            [{"row_id": 1}],
            {"display": "image", "image_shape": (2, 2), "features_of": lambda ids: ["spam text"]},
            r"an image row must be numeric, got str 'spam text'",
        ),
    ],
)
def test_export_rejects_bad_input(tmp_path, items, kwargs, message):
    options = {"classes": CLASSES, "display": "table", "features_of": lambda ids: [np.arange(4.0) for _ in ids], **kwargs}

    with pytest.raises(DataError, match=message):
        export_tasks(items, tmp_path / "tasks.json", **options)

    assert list(tmp_path.iterdir()) == []
