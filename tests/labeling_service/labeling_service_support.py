"""Helpers of the labeling service tests: a real label store with MNIST tasks, annotators and the app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from al_ray.data import LabeledData
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.queue import LabelQueue
from al_ray.labeling.schema import annotations_table, leases_table, queue_items_table
from al_ray.labeling.service import RowSource, create_app
from al_ray.labels import LabelStore
from al_ray.monitoring.audit import AuditLog
from al_ray.monitoring.metrics import AlRayMetrics

# Pool rows posted as round-1 tasks; their MNIST digits are 7, 2, 1, 0, 4, 1.
TASK_ROW_IDS = [0, 1, 2, 3, 4, 5]


class FakeClock:
    """A clock the test moves by hand, in unix seconds."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class LabelingRun:
    """A label store with tasks posted and enqueued, its queue, annotator tokens and the app's client."""

    store_url: str
    store: LabelStore
    queue: LabelQueue
    rows: RowSource
    config: LabelingConfig
    clock: FakeClock
    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)

    def auth(self, annotator: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[annotator]}"}

    def next_item(self, annotator: str) -> dict[str, Any]:
        response = self.client.get("/api/next", headers=self.auth(annotator))
        assert response.status_code == 200, response.text
        task = response.json()["task"]
        assert task is not None
        return task

    def annotations(self) -> list[dict[str, Any]]:
        """Every stored annotation, ordered by annotation id."""
        return self._rows(sa.select(annotations_table).order_by(annotations_table.c.annotation_id))

    def leases(self) -> list[dict[str, Any]]:
        return self._rows(sa.select(leases_table).order_by(leases_table.c.item_id, leases_table.c.annotator_id))

    def kind_of(self, item_id: int) -> str:
        rows = self._rows(sa.select(queue_items_table.c.kind).where(queue_items_table.c.item_id == item_id))
        return str(rows[0]["kind"])

    def row_of(self, item_id: int) -> int:
        rows = self._rows(sa.select(queue_items_table.c.row_id).where(queue_items_table.c.item_id == item_id))
        return int(rows[0]["row_id"])

    def _rows(self, query) -> list[dict[str, Any]]:
        engine = sa.create_engine(self.store_url)
        try:
            with engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(query)]
        finally:
            engine.dispose()



def open_labeling_run(
    store_url: str,
    mnist: LabeledData,
    row_ids: list[int] | None = None,
    *,
    audit: AuditLog | None = None,
    metrics: AlRayMetrics | None = None,
    **labeling: Any,
) -> Iterator[LabelingRun]:
    """Post ``row_ids`` as round-1 tasks, enqueue them, add alice, bob and admin, and yield the run.

    ``audit`` and ``metrics`` go to the queue and the app as the serve command passes them.
    """
    config = LabelingConfig(**labeling)
    clock = FakeClock()
    rows = RowSource(mnist)
    with LabelStore(store_url) as store:
        store.begin_round(1)
        store.post_tasks(1, row_ids if row_ids is not None else TASK_ROW_IDS)
        store.mark_round_queried(1)
        queue = LabelQueue(store, rows.classes, config, seed=7, clock=clock, audit=audit)
        queue.enqueue(store.tasks(round_index=1))
        tokens = {
            "alice": queue.add_annotator("alice"),
            "bob": queue.add_annotator("bob"),
            "admin": queue.add_annotator("admin", role="admin"),
        }
        with TestClient(create_app(queue, rows, config, metrics=metrics)) as client:
            yield LabelingRun(store_url, store, queue, rows, config, clock, client, tokens)


def write_human_config(folder: Path, **sections: Any) -> Path:
    """Write an MNIST config with labels.source human whose output folder is ``folder / 'run'``."""
    config: dict[str, Any] = {
        "name": "mnist_people",
        "seed": 3,
        "output": str(folder / "run"),
        "data": {"dataset": "mnist_test", "initial_labeled": 20, "test_size": 1000, "pool_size": 3000},
        "labels": {"source": "human"},
        "tracking": {"enabled": False},
    }
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
