"""The watcher's state file: a trigger claims one round, across reopening; failures and counters persist."""

from __future__ import annotations

from pathlib import Path

import pytest

from al_ray.errors import ConfigError
from al_ray.monitoring.watch_state import (
    REQUEST_ABANDONED,
    REQUEST_PENDING,
    REQUEST_SUCCEEDED,
    WatchState,
)

DRIFT = ("drift@w1", "drift", {"score": 3.0}, "drift score 3 >= 1")
STALE = ("staleness@w1", "staleness", {"age_s": 10.0}, "live version is 10 s old")


def test_claim_creates_one_request(tmp_path: Path) -> None:
    with WatchState(tmp_path / "watch.db") as state:
        request = state.claim("w1", [DRIFT, STALE], target_round=3, source_time_s=50.0, meta={"source.position": 100})

        assert request is not None
        assert request.target_round == 3
        assert request.status == REQUEST_PENDING
        assert request.attempts == 0
        assert state.request_policies(request.request_id) == ["drift", "staleness"]
        assert state.get("source.position") == "100"
        assert [trigger["trigger_id"] for trigger in state.triggers()] == ["drift@w1", "staleness@w1"]


def test_second_claim_of_window_is_refused(tmp_path: Path) -> None:
    with WatchState(tmp_path / "watch.db") as state:
        first = state.claim("w1", [DRIFT], target_round=1, source_time_s=0.0)
        again = state.claim("w1", [DRIFT, STALE], target_round=2, source_time_s=0.0, meta={"source.position": 7})

        assert first is not None
        assert again is None
        assert len(state.requests()) == 1
        # A refused claim writes nothing, not even its meta keys.
        assert state.get("source.position") is None
        assert len(state.triggers()) == 1


def test_claim_refused_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "watch.db"
    with WatchState(path) as state:
        state.claim("w1", [DRIFT], target_round=1, source_time_s=0.0)

    with WatchState(path) as reopened:
        assert reopened.claim("w1", [DRIFT], target_round=1, source_time_s=0.0) is None
        assert reopened.pending_request().window_id == "w1"


def test_trigger_id_claimed_once_across_windows(tmp_path: Path) -> None:
    # The same trigger id cannot make a second request, even under another window id.
    with WatchState(tmp_path / "watch.db") as state:
        state.claim("w1", [DRIFT], target_round=1, source_time_s=0.0)

        assert state.claim("w1-copy", [DRIFT], target_round=1, source_time_s=0.0) is None


def test_failure_schedules_retry_then_abandons(tmp_path: Path) -> None:
    with WatchState(tmp_path / "watch.db") as state:
        request = state.claim("w1", [DRIFT], target_round=1, source_time_s=0.0)
        failed = state.record_failure(request.request_id, "ModelError: boom", 123.0, abandon=False)

        assert failed.status == REQUEST_PENDING
        assert failed.attempts == 1
        assert failed.next_attempt_at == 123.0
        assert failed.last_error == "ModelError: boom"

        abandoned = state.record_failure(request.request_id, "ModelError: boom", 456.0, abandon=True)

        assert abandoned.status == REQUEST_ABANDONED
        assert abandoned.attempts == 2
        assert state.pending_request() is None


def test_finish_marks_success(tmp_path: Path) -> None:
    with WatchState(tmp_path / "watch.db") as state:
        request = state.claim("w1", [DRIFT], target_round=1, source_time_s=0.0)
        done = state.finish(request.request_id, REQUEST_SUCCEEDED)

        assert done.status == REQUEST_SUCCEEDED
        assert done.attempts == 1
        assert state.pending_request() is None
        # A finished window still refuses a second claim.
        assert state.claim("w1", [DRIFT], target_round=2, source_time_s=0.0) is None


def test_counters_persist(tmp_path: Path) -> None:
    path = tmp_path / "watch.db"
    with WatchState(path) as state:
        assert state.increment("count.windows") == 1
        assert state.increment("count.windows", by=2) == 3
        state.set({"version.time_s": 12.5})

    with WatchState(path) as reopened:
        assert reopened.counter("count.windows") == 3
        assert reopened.get_float("version.time_s") == 12.5
        assert reopened.counter("count.missing") == 0


def test_unwritable_state_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")

    with pytest.raises(ConfigError, match="set monitoring.watch.state_path"):
        WatchState(blocker / "watch.db")
