"""Round state and run metadata in the label store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from al_ray.errors import LabelStoreError
from al_ray.labels import LabelStore


@pytest.fixture
def store(label_store_url: str) -> LabelStore:
    """An empty store on SQLite, then on PostgreSQL (see tests/conftest.py)."""
    with LabelStore(label_store_url) as opened:
        yield opened


def test_round_transitions(store: LabelStore) -> None:
    assert store.round_status(0) is None
    assert store.last_completed_round() is None

    store.begin_round(0)
    assert store.round_status(0) == "started"
    store.mark_round_queried(0)
    assert store.round_status(0) == "queried"
    store.complete_round(0, {"accuracy": 0.5, "n_labeled": 10}, model_path="models/0")
    assert store.round_status(0) == "completed"
    assert store.last_completed_round() == 0

    store.begin_round(1)
    store.complete_round(1, {"accuracy": 0.625})
    assert store.last_completed_round() == 1

    records = store.round_records()
    assert [record["round_index"] for record in records] == [0, 1]
    assert records[0]["status"] == "completed"
    assert records[0]["metrics"] == {"accuracy": 0.5, "n_labeled": 10.0}
    assert records[0]["model_path"] == "models/0"
    assert records[0]["started_at"] <= records[0]["queried_at"] <= records[0]["completed_at"]
    assert records[1]["queried_at"] is None
    assert records[1]["model_path"] is None


def test_round_open_record(store: LabelStore) -> None:
    store.begin_round(3)
    record = store.round_records()[0]
    assert record["status"] == "started"
    assert record["metrics"] == {}
    assert record["completed_at"] is None


def test_round_repeat_is_noop(store: LabelStore) -> None:
    store.begin_round(0)
    started_at = store.round_records()[0]["started_at"]
    store.begin_round(0)
    store.mark_round_queried(0)
    store.begin_round(0)
    store.mark_round_queried(0)
    assert store.round_status(0) == "queried"
    assert store.round_records()[0]["started_at"] == started_at
    store.complete_round(0, {"accuracy": 0.5}, "models/0")
    store.complete_round(0, {"accuracy": 0.5}, "models/0")
    assert store.round_status(0) == "completed"


def test_round_complete_twice_differs(store: LabelStore) -> None:
    store.begin_round(0)
    store.complete_round(0, {"accuracy": 0.5})
    with pytest.raises(LabelStoreError, match="Round 0 is already completed with metrics"):
        store.complete_round(0, {"accuracy": 0.9})
    assert store.round_records()[0]["metrics"] == {"accuracy": 0.5}


def test_round_begin_completed(store: LabelStore) -> None:
    store.begin_round(0)
    store.complete_round(0, {})
    with pytest.raises(
        LabelStoreError, match="Cannot begin round 0: it is already completed. Begin round 1"
    ):
        store.begin_round(0)


def test_round_begin_while_open(store: LabelStore) -> None:
    store.begin_round(0)
    store.mark_round_queried(0)
    with pytest.raises(
        LabelStoreError,
        match="Cannot begin round 1: round 0 is still queried. Complete round 0 first",
    ):
        store.begin_round(1)
    assert store.round_status(1) is None


def test_round_begin_below_last(store: LabelStore) -> None:
    store.begin_round(2)
    store.complete_round(2, {})
    with pytest.raises(
        LabelStoreError, match="Cannot begin round 1: round 2 is already completed"
    ):
        store.begin_round(1)


def test_round_not_begun(store: LabelStore) -> None:
    with pytest.raises(LabelStoreError, match=r"it was never begun. Call begin_round\(4\) first"):
        store.mark_round_queried(4)
    with pytest.raises(LabelStoreError, match=r"Cannot complete round 4: it was never begun"):
        store.complete_round(4, {})


def test_round_queried_after_complete(store: LabelStore) -> None:
    store.begin_round(0)
    store.complete_round(0, {})
    with pytest.raises(LabelStoreError, match="Cannot mark round 0 as queried: it is already"):
        store.mark_round_queried(0)


def test_round_metrics_invalid(store: LabelStore) -> None:
    store.begin_round(0)
    with pytest.raises(LabelStoreError, match="Metric 'accuracy' of round 0 must be a number"):
        store.complete_round(0, {"accuracy": "high"})
    with pytest.raises(LabelStoreError, match="Metric names of round 0 must be strings, got 1"):
        store.complete_round(0, {1: 0.5})  # type: ignore[dict-item]
    with pytest.raises(LabelStoreError, match="model_path of round 0 must be a string"):
        store.complete_round(0, {}, model_path=Path("m"))  # type: ignore[arg-type]
    assert store.round_status(0) == "started"


def test_round_metrics_non_finite(store: LabelStore) -> None:
    store.begin_round(0)
    store.complete_round(0, {"log_loss": math.inf, "auc": math.nan})
    metrics = store.round_records()[0]["metrics"]
    assert metrics["log_loss"] == math.inf
    assert math.isnan(metrics["auc"])


def test_meta_upsert(store: LabelStore) -> None:
    assert store.get_meta("mlflow_run_id") is None
    store.set_meta("mlflow_run_id", "run-1")
    store.set_meta("config_fingerprint", "f00d")
    store.set_meta("mlflow_run_id", "run-2")
    assert store.get_meta("mlflow_run_id") == "run-2"
    assert store.get_meta("config_fingerprint") == "f00d"


def test_meta_invalid(store: LabelStore) -> None:
    with pytest.raises(LabelStoreError, match="Metadata value for 'seed' must be a string, got 3"):
        store.set_meta("seed", 3)  # type: ignore[arg-type]
    with pytest.raises(LabelStoreError, match="Metadata keys must be non-empty strings"):
        store.set_meta("", "x")
