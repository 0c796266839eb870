"""The queue's tables added to an existing label store, their version, and the labeling config."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from al_ray.config import parse_config
from al_ray.errors import ConfigError, LabelStoreError
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.errors import InvalidLabelError
from al_ray.labeling.queue import LabelQueue
from al_ray.labels import Answer, LabelStore
from al_ray.labels._schema import schema_version_table


def test_tables_added_to_existing_store(label_store_url: str) -> None:
    with LabelStore(label_store_url) as store:
        store.post_tasks(0, [1, 2])
        store.add_answers([Answer(1, "cat", "oracle", 5.0)])

    with LabelStore(label_store_url) as store:
        queue = LabelQueue(store, ["cat", "dog"], LabelingConfig())
        LabelQueue(store, ["cat", "dog"], LabelingConfig())
        assert queue.enqueue(store.tasks(status="pending")) == 1
        assert store.get_meta("labeling_schema_version") == "1"
        with store.read_transaction("read test version") as connection:
            versions = connection.execute(sa.select(schema_version_table.c.version)).scalars().all()
            tables = set(sa.inspect(connection).get_table_names())
        assert versions == [1]
        assert {"annotators", "queue_items", "leases", "annotations", "tasks", "answers"} <= tables
        assert store.labels() == {1: "cat"}

    # A store with the queue's tables still opens as a plain label store.
    with LabelStore(label_store_url) as store:
        assert store.labels() == {1: "cat"}


def test_newer_labeling_tables_rejected(label_store_url: str) -> None:
    with LabelStore(label_store_url) as store:
        LabelQueue(store, ["cat"], LabelingConfig())
        store.set_meta("labeling_schema_version", "9")
        with pytest.raises(
            LabelStoreError, match="has labeling tables of version 9, but this al_ray reads version 1"
        ):
            LabelQueue(store, ["cat"], LabelingConfig())


def test_queue_classes_checked(label_store_url: str) -> None:
    with (
        LabelStore(label_store_url) as store,
        pytest.raises(InvalidLabelError, match="classes must be a non-empty sequence of non-empty strings"),
    ):
        LabelQueue(store, [], LabelingConfig())


def test_config_defaults() -> None:
    config = LabelingConfig()
    assert (config.answers_per_task, config.max_answers, config.quota) == (1, 3, 1.0)
    assert (config.host, config.port, config.lease_timeout_s) == ("127.0.0.1", 8300, 300.0)
    assert LabelingConfig(answers_per_task=3).max_answers == 5
    assert LabelingConfig(answers_per_task=3, max_answers_per_task=3).max_answers == 3


@pytest.mark.parametrize(
    ("labeling", "message"),
    [
        (
            {"answers_per_task": 3, "max_answers_per_task": 2},
            r"max_answers_per_task \(2\) must be at least answers_per_task \(3\)",
        ),
        ({"quota": 0}, r"labeling\.quota: Input should be greater than 0"),
        ({"gold_rate": 0.6}, r"labeling\.gold_rate: Input should be less than or equal to 0\.5"),
        ({"image_shape": [28]}, r"image_shape must be \[height, width\] or \[height, width, channels\]"),
        ({"aggregation": "vote"}, r"labeling\.aggregation: Input should be 'auto', 'majority' or 'dawid_skene'"),
        ({"tie_rule": "coin"}, r"labeling\.tie_rule"),
        ({"answers": 2}, r"unknown key 'labeling\.answers'"),
    ],
)
def test_config_invalid(labeling: dict, message: str) -> None:
    raw = {"name": "x", "data": {"dataset": "mnist_test"}, "labeling": labeling}
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)
