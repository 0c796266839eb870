"""Fixtures of the labeling service tests; the helpers are in labeling_service_support.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labeling_service_support import LabelingRun, open_labeling_run

from al_ray.data import LabeledData, load_shipped


@pytest.fixture(scope="session")
def mnist() -> LabeledData:
    return load_shipped("mnist_test")


@pytest.fixture
def labeling_run(label_store_url: str, mnist: LabeledData) -> Iterator[LabelingRun]:
    """A run on each database (SQLite, and PostgreSQL when its test server is set), one answer per task."""
    yield from open_labeling_run(label_store_url, mnist)


@pytest.fixture
def sqlite_run(tmp_path: Path, mnist: LabeledData) -> Iterator[LabelingRun]:
    """A run on SQLite only, for the tests whose subject is HTTP rather than the database."""
    yield from open_labeling_run(f"sqlite:///{tmp_path / 'labels.db'}", mnist)
