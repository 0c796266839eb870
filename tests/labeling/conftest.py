"""Fixtures for the labeling queue: a label store on each database, a fake clock, a queue factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.queue import LabelQueue
from al_ray.labels import LabelStore, Task

CLASSES = ("cat", "dog", "fox")


class FakeClock:
    """A clock in unix seconds that moves only when advanced."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def store(label_store_url: str) -> Iterator[LabelStore]:
    """An empty label store on SQLite, then on PostgreSQL (see tests/conftest.py)."""
    with LabelStore(label_store_url) as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_queue(store: LabelStore, clock: FakeClock) -> Callable[..., LabelQueue]:
    """Return a factory of queues on ``store`` with the fake clock; keyword arguments set LabelingConfig fields."""

    def build(*, seed: int = 7, classes: tuple[str, ...] = CLASSES, **settings: object) -> LabelQueue:
        return LabelQueue(store, classes, LabelingConfig(**settings), seed=seed, clock=clock)

    return build


@pytest.fixture
def post(store: LabelStore) -> Callable[[int, list[int]], list[Task]]:
    """Return a function that posts tasks for row ids in a round and returns that round's pending tasks."""

    def post_round(round_index: int, row_ids: list[int]) -> list[Task]:
        store.post_tasks(round_index, row_ids)
        return store.tasks(round_index=round_index, status="pending")

    return post_round
