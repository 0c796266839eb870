"""Tasks and answers in the label store, on real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import logging
import math
import os
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from al_ray.errors import DataError, LabelStoreError
from al_ray.labels import AddAnswersResult, Answer, LabelStore, Task


@pytest.fixture
def store(label_store_url: str) -> LabelStore:
    """An empty store on SQLite, then on PostgreSQL (see tests/conftest.py)."""
    with LabelStore(label_store_url) as opened:
        yield opened


def answer(row_id: int, label: str, annotator: str = "oracle", at: float = 100.0) -> Answer:
    return Answer(row_id=row_id, label=label, annotator=annotator, answered_at=at)


# Opening


def test_open_plain_path_and_url(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "labels.db"
    with LabelStore(str(path)) as store:
        store.post_tasks(0, [1])
    assert path.is_file()
    with LabelStore(f"sqlite:///{path}") as store:
        assert store.queried_row_ids().tolist() == [1]
        assert store.location == str(path)


def test_open_sets_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    LabelStore(path).close()
    with closing(sqlite3.connect(path)) as connection:
        # journal_mode is stored in the file; synchronous is per connection and
        # checked through the store's own engine below.
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store = LabelStore(path)
    with store._engines.read.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


def test_open_in_memory_rejected() -> None:
    with pytest.raises(LabelStoreError, match="in-memory SQLite database"):
        LabelStore("sqlite://")
    with pytest.raises(LabelStoreError, match="in-memory SQLite database"):
        LabelStore("sqlite:///:memory:")
    with pytest.raises(LabelStoreError, match="in-memory SQLite database"):
        LabelStore("sqlite:///file:labels?mode=memory&uri=true")


def test_open_unknown_dialect(tmp_path: Path) -> None:
    with pytest.raises(LabelStoreError, match="Cannot create a database engine for label store"):
        LabelStore("nosuchdb://user:secret@localhost/labels")


def test_open_hides_password(tmp_path: Path) -> None:
    with pytest.raises(LabelStoreError) as raised:
        LabelStore("nosuchdb://user:secret@localhost/labels")
    assert "secret" not in str(raised.value)


def test_open_folder_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(LabelStoreError, match=r"Cannot create the folder .*not_a_folder"):
        LabelStore(blocker / "labels.db")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_open_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(LabelStoreError, match=r"Cannot open label store .*locked/labels\.db"):
            LabelStore(folder / "labels.db")
    finally:
        folder.chmod(0o700)


def test_open_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    path.write_bytes(b"this is not a sqlite file, just text that is long enough" * 20)
    with pytest.raises(LabelStoreError, match=r"Cannot open label store .*labels\.db"):
        LabelStore(path)


def test_open_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    LabelStore(path).close()
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("UPDATE schema_version SET version = 99")
        connection.commit()
    with pytest.raises(
        LabelStoreError, match="has schema version 99, but this al_ray reads version 1"
    ):
        LabelStore(path)


def test_open_bad_location_type() -> None:
    with pytest.raises(LabelStoreError, match="must be a SQLAlchemy URL or a file path, got 42"):
        LabelStore(42)  # type: ignore[arg-type]


def test_closed_store_raises(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.db")
    store.close()
    store.close()
    with pytest.raises(LabelStoreError, match="is closed"):
        store.labels()


# Tasks


def test_post_tasks_keeps_order(store: LabelStore) -> None:
    assert store.post_tasks(0, [30, 10, 20], utilities=[0.9, 0.5, 0.1], model_version="v0") == 3
    assert store.post_tasks(1, [5, 40]) == 2
    assert store.tasks() == [
        Task(30, 0, 0.9, "v0", "pending"),
        Task(10, 0, 0.5, "v0", "pending"),
        Task(20, 0, 0.1, "v0", "pending"),
        Task(5, 1, None, None, "pending"),
        Task(40, 1, None, None, "pending"),
    ]
    assert [task.row_id for task in store.tasks(round_index=1)] == [5, 40]
    assert store.queried_row_ids().tolist() == [5, 10, 20, 30, 40]
    assert store.queried_row_ids().dtype == np.int64
    assert store.queried_row_ids(before_round=1).tolist() == [10, 20, 30]
    assert store.queried_row_ids(before_round=0).tolist() == []


def test_post_tasks_numpy_input(store: LabelStore) -> None:
    row_ids = np.array([7, 3], dtype=np.int64)
    utilities = np.array([np.nan, 0.25])
    assert store.post_tasks(0, row_ids, utilities) == 2
    assert store.tasks() == [Task(7, 0, None, None, "pending"), Task(3, 0, 0.25, None, "pending")]


def test_post_tasks_same_round_noop(store: LabelStore) -> None:
    assert store.post_tasks(0, [3, 1, 2]) == 3
    assert store.post_tasks(0, [3, 1, 2]) == 0
    # A partly new call adds only the new rows, after the existing ones.
    assert store.post_tasks(0, [1, 8]) == 1
    assert [task.row_id for task in store.tasks(0)] == [3, 1, 2, 8]


def test_post_tasks_other_round_raises(store: LabelStore) -> None:
    store.post_tasks(0, [4, 5])
    with pytest.raises(
        LabelStoreError,
        match=r"Cannot post tasks in round 1 because these rows already have a task from "
        r"another round: row_id 5 in round 0\. A row is queried at most once per run",
    ):
        store.post_tasks(1, [9, 5])
    assert store.queried_row_ids().tolist() == [4, 5]


def test_post_tasks_atomic(store: LabelStore) -> None:
    store.post_tasks(0, [1])
    with pytest.raises(LabelStoreError, match="row_id 1 in round 0"):
        store.post_tasks(1, [2, 3, 1, 4])
    assert store.tasks() == [Task(1, 0, None, None, "pending")]


def test_post_tasks_repeated_ids(store: LabelStore) -> None:
    with pytest.raises(
        LabelStoreError, match="row_ids must be distinct, but row_ids 2, 5 appear more than once"
    ):
        store.post_tasks(0, [2, 5, 2, 5, 7])
    assert store.tasks() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"round_index": -1, "row_ids": [1]}, "round_index must be an integer >= 0, got -1"),
        ({"round_index": 1.5, "row_ids": [1]}, "round_index must be an integer >= 0, got 1.5"),
        (
            {"round_index": 0, "row_ids": [1.0]},
            "row_ids must contain integers, got 1.0 of type float",
        ),
        ({"round_index": 0, "row_ids": [True]}, "row_ids must contain integers, got the bool True"),
        (
            {"round_index": 0, "row_ids": [1, 2], "utilities": [0.5]},
            "got 1 utilities for 2 row ids",
        ),
        ({"round_index": 0, "row_ids": [1], "utilities": ["high"]}, "utilities must be numbers"),
        ({"round_index": 0, "row_ids": [1], "model_version": 3}, "model_version must be a string"),
    ],
)
def test_post_tasks_invalid_input(store: LabelStore, kwargs: dict, message: str) -> None:
    with pytest.raises(LabelStoreError, match=message):
        store.post_tasks(**kwargs)
    assert store.tasks() == []


def test_post_tasks_empty(store: LabelStore) -> None:
    assert store.post_tasks(0, []) == 0
    assert store.tasks() == []


def test_tasks_status_filter(store: LabelStore) -> None:
    store.post_tasks(0, [1, 2, 3])
    store.add_answers([answer(2, "x")])
    assert [task.row_id for task in store.tasks(status="pending")] == [1, 3]
    assert [task.row_id for task in store.tasks(status="answered")] == [2]
    with pytest.raises(LabelStoreError, match="Task status must be one of"):
        store.tasks(status="done")


# Answers


def test_add_answers_stores_and_marks(store: LabelStore) -> None:
    store.post_tasks(0, [1, 2, 3])
    result = store.add_answers([answer(1, "7", at=10.0), answer(3, "2", at=11.0)])
    assert result == AddAnswersResult(stored=2, duplicates=0, conflicts=[])
    assert store.labels() == {1: "7", 3: "2"}
    assert store.count_answered() == 2
    assert store.answers() == [answer(1, "7", at=10.0), answer(3, "2", at=11.0)]
    assert store.answers(3) == [answer(3, "2", at=11.0)]


def test_add_answers_duplicate_kept_once(store: LabelStore) -> None:
    store.post_tasks(0, [1])
    first = store.add_answers([answer(1, "A", at=1.0)])
    again = store.add_answers([answer(1, "A", at=2.0), answer(1, "A", at=3.0)])
    assert first == AddAnswersResult(stored=1, duplicates=0, conflicts=[])
    assert again == AddAnswersResult(stored=0, duplicates=2, conflicts=[])
    assert store.answers() == [answer(1, "A", at=1.0)]
    assert store.labels() == {1: "A"}


def test_add_answers_agreeing_annotators(store: LabelStore) -> None:
    store.post_tasks(0, [1])
    result = store.add_answers([answer(1, "A", "ann"), answer(1, "A", "bob")])
    assert result == AddAnswersResult(stored=2, duplicates=0, conflicts=[])
    assert store.labels() == {1: "A"}
    assert store.conflicted_row_ids() == []


def test_add_answers_conflict_flagged(store: LabelStore, caplog: pytest.LogCaptureFixture) -> None:
    store.post_tasks(0, [1, 2])
    store.add_answers([answer(1, "A", "ann"), answer(2, "B", "ann")])
    with caplog.at_level(logging.WARNING, logger="al_ray.labels.store"):
        result = store.add_answers([answer(1, "C", "bob")])
    assert result == AddAnswersResult(stored=1, duplicates=0, conflicts=[1])
    assert store.labels() == {2: "B"}
    assert store.conflicted_row_ids() == [1]
    assert [(a.annotator, a.label) for a in store.answers(1)] == [("ann", "A"), ("bob", "C")]
    assert "row_id 1 now has conflicting labels ['A', 'C']" in caplog.text
    assert store.tasks(status="answered") == [
        Task(1, 0, None, None, "answered"),
        Task(2, 0, None, None, "answered"),
    ]


def test_add_answers_same_annotator_conflict(store: LabelStore) -> None:
    store.post_tasks(0, [1])
    result = store.add_answers([answer(1, "A"), answer(1, "B"), answer(1, "A")])
    assert result == AddAnswersResult(stored=2, duplicates=1, conflicts=[1])
    assert store.labels() == {}
    assert store.conflicted_row_ids() == [1]


def test_add_answers_unknown_task(store: LabelStore) -> None:
    store.post_tasks(0, [1])
    with pytest.raises(
        LabelStoreError,
        match=r"No task was posted for row_ids 8, 9, so no answer from this call was stored",
    ):
        store.add_answers([answer(1, "A"), answer(9, "B"), answer(8, "C")])
    assert store.answers() == []
    assert store.tasks() == [Task(1, 0, None, None, "pending")]


def test_add_answers_not_an_answer(store: LabelStore) -> None:
    store.post_tasks(0, [1])
    with pytest.raises(LabelStoreError, match="add_answers takes Answer objects, got"):
        store.add_answers([(1, "A")])  # type: ignore[list-item]


def test_add_answers_empty(store: LabelStore) -> None:
    assert store.add_answers([]) == AddAnswersResult(stored=0, duplicates=0, conflicts=[])


def test_answer_invalid_fields() -> None:
    with pytest.raises(DataError, match="Answer.label for row_id 3 must be a non-empty string"):
        Answer(3, "", "oracle", 1.0)
    with pytest.raises(DataError, match="Answer.label for row_id 3 must be a non-empty string"):
        Answer(3, 7, "oracle", 1.0)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="Answer.annotator for row_id 3"):
        Answer(3, "7", "", 1.0)
    with pytest.raises(DataError, match="Answer.answered_at for row_id 3 must be finite"):
        Answer(3, "7", "oracle", math.nan)
    with pytest.raises(DataError, match="Answer.row_id must be an integer, got '3'"):
        Answer("3", "7", "oracle", 1.0)  # type: ignore[arg-type]
    assert Answer(np.int64(3), "7", "oracle", 1).row_id == 3


# Durability across reopening


def test_reopen_keeps_everything(label_store_url: str) -> None:
    path = label_store_url
    with LabelStore(path) as store:
        store.begin_round(0)
        store.post_tasks(0, [11, 12, 13], utilities=[3.0, 2.0, 1.0], model_version="m0")
        store.mark_round_queried(0)
        store.add_answers([answer(11, "a", at=5.0), answer(12, "b"), answer(12, "c", "bob")])
        store.complete_round(0, {"accuracy": 0.75}, model_path="models/0")
        store.set_meta("config_fingerprint", "abc123")

    with LabelStore(path) as store:
        assert store.tasks() == [
            Task(11, 0, 3.0, "m0", "answered"),
            Task(12, 0, 2.0, "m0", "answered"),
            Task(13, 0, 1.0, "m0", "pending"),
        ]
        assert store.labels() == {11: "a"}
        assert store.conflicted_row_ids() == [12]
        assert store.answers(11) == [answer(11, "a", at=5.0)]
        assert store.last_completed_round() == 0
        assert store.round_records()[0]["metrics"] == {"accuracy": 0.75}
        assert store.get_meta("config_fingerprint") == "abc123"
        assert store.post_tasks(0, [11, 12, 13]) == 0


def test_read_only_store_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    with LabelStore(path) as store:
        store.post_tasks(0, [1])
    with LabelStore(f"sqlite:///file:{path}?mode=ro&uri=true") as store:
        assert store.queried_row_ids().tolist() == [1]
        with pytest.raises(
            LabelStoreError,
            match=r"Failed to post tasks in label store .*: attempt to write a readonly database",
        ):
            store.post_tasks(0, [2])


def test_write_lock_timeout(tmp_path: Path) -> None:
    path = tmp_path / "labels.db"
    with LabelStore(path, busy_timeout_s=0.2) as store:
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(
                LabelStoreError,
                match=r"Failed to post tasks in label store .*: database is locked\. .*"
                r"held the write lock for more than 0\.2 s",
            ):
                store.post_tasks(0, [1])
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        assert store.post_tasks(0, [1]) == 1


def test_busy_timeout_invalid(tmp_path: Path) -> None:
    with pytest.raises(LabelStoreError, match="busy_timeout_s must be a positive number"):
        LabelStore(tmp_path / "labels.db", busy_timeout_s=0)


# Write transactions on either database


def test_write_waits_then_times_out(label_store_url: str) -> None:
    with LabelStore(label_store_url) as holder, LabelStore(label_store_url, busy_timeout_s=0.2) as waiter:
        with (
            holder.write_transaction("hold the write lock"),
            pytest.raises(LabelStoreError, match=r"Failed to post tasks in label store .*lock"),
        ):
            waiter.post_tasks(0, [1])
        assert waiter.post_tasks(0, [1]) == 1


def test_concurrent_duplicate_answers_stored_once(label_store_url: str) -> None:
    import threading

    with LabelStore(label_store_url) as store:
        store.post_tasks(0, list(range(20)))
        batch = [answer(row_id, "A") for row_id in range(20)]
        results: list[AddAnswersResult] = []
        errors: list[BaseException] = []

        def add() -> None:
            try:
                results.append(store.add_answers(batch))
            except BaseException as error:  # noqa: BLE001 - reported by the assert below
                errors.append(error)

        threads = [threading.Thread(target=add) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert sorted(result.stored for result in results) == [0, 0, 0, 0, 0, 20]
        assert len(store.answers()) == 20


def test_write_waits_for_own_thread_lock(tmp_path: Path) -> None:
    with LabelStore(tmp_path / "labels.db", busy_timeout_s=0.2) as store:
        # A second write from the same store waits on the store's own lock
        # first, and times out with a message that names it.
        with (
            store.write_transaction("hold the write lock"),
            pytest.raises(LabelStoreError, match="timed out after 0.2 s waiting for another thread"),
        ):
            store.post_tasks(0, [1])
        assert store.post_tasks(0, [1]) == 1
