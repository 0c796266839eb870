"""The watcher on a synthetic stream with the real loop: one round per trigger, cooldown, retries, bad windows.

Each test replays a small CSV stream (windows of 100 rows, one row per
second of replay time) whose first window trains round 0. Rounds run the real
loop in this process: scikit-learn logistic regression, in-process scoring,
the simulated oracle, no tracking.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from al_ray.config import parse_config
from al_ray.labels import LabelStore
from al_ray.loop import ActiveLearningLoop
from al_ray.monitoring.live_sources import LiveWindow
from al_ray.monitoring.watch import POSITION_KEY, Watcher
from al_ray.monitoring.watch_state import REQUEST_SUCCEEDED
from al_ray.serving.feedback import UncertainRowStore

pytestmark = pytest.mark.slow

WINDOW = 100


def write_stream(path: Path, segments: list[str], seed: int = 0) -> Path:
    """Write one window of 100 rows per segment: ``normal``, ``shifted`` (f1 + 6) or ``boundary`` (f0 near 0).

    The label is ``b`` when f0 > 0, else ``a``; f1 carries no signal.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for segment in segments:
        f0 = rng.normal(0, 1, WINDOW) if segment != "boundary" else rng.normal(0, 0.01, WINDOW)
        f1 = rng.normal(0, 1, WINDOW) + (6.0 if segment == "shifted" else 0.0)
        frames.append(pd.DataFrame({"f0": f0, "f1": f1, "label": np.where(f0 > 0, "b", "a")}))
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "row_id", np.arange(len(table)))
    table.to_csv(path, index=False)
    return path


def make_config(tmp_path: Path, segments: list[str], triggers: dict, **watch):
    stream = write_stream(tmp_path / "stream.csv", segments)
    raw = {
        "name": "watch-test",
        "seed": 0,
        "output": str(tmp_path / "run"),
        "data": {"path": str(stream), "label_column": "label", "row_id_column": "row_id", "test_size": 0.1},
        "model": {"estimator": "logistic_regression", "fit_on": "driver"},
        "loop": {"batch_size": 10},
        "scoring": {"mode": "local"},
        "tracking": {"enabled": False},
        "monitoring": {
            "drift": {"window": {"size": WINDOW}, "min_window_rows": 20},
            "triggers": triggers,
            "watch": {
                "source": {"kind": "replay", "seconds_per_row": 1.0},
                "reports": "none",
                "backoff_initial_s": 1.0,
                "backoff_max_s": 8.0,
                **watch,
            },
        },
    }
    return parse_config(raw)


class FakeClock:
    """A clock that moves only when the watcher sleeps, so backoff waits cost no time."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def requested_windows(summary) -> list[int]:
    """Return the 1-based numbers of the windows on which a round was requested."""
    return [number for number, report in enumerate(summary.reports, start=1) if report.action == "round requested"]


def completed_rounds(tmp_path: Path) -> list[int]:
    with LabelStore(tmp_path / "run" / "labels.db") as store:
        return [row["round_index"] for row in store.round_records() if row["status"] == "completed"]


def watch(config, tmp_path: Path, clock: FakeClock | None = None, **options):
    clock = clock or FakeClock()
    with Watcher(config, output_dir=tmp_path / "run", sleep=clock.sleep, clock=clock, **options) as watcher:
        return watcher.run()


# A shift in f1 from window 3 on. With the recent traffic as reference, the
# round started on window 3 makes that window the reference, so the shifted
# windows after it do not fire again.
SHIFT_STREAM = ["normal", "normal", "normal", "shifted", "shifted", "shifted"]


def drift_config(tmp_path: Path):
    return make_config(tmp_path, SHIFT_STREAM, {"drift": {"min_drifted_share": 0.5}}, reference="recent_traffic")


def test_drift_starts_one_round_per_trigger(tmp_path: Path) -> None:
    summary = watch(drift_config(tmp_path), tmp_path)

    assert requested_windows(summary) == [3]
    assert summary.reports[2].drifted_features == ("f1",)
    assert summary.rounds_succeeded == 1
    assert completed_rounds(tmp_path) == [0, 1]
    assert [report.live_round for report in summary.reports] == [0, 0, 0, 1, 1]


def test_labeled_reference_keeps_firing_after_shift(tmp_path: Path) -> None:
    # The labeled reference holds few shifted rows after one round of 10 labels,
    # so the shifted windows after the round still differ from it.
    config = make_config(tmp_path, SHIFT_STREAM, {"drift": {"min_drifted_share": 0.5}})

    summary = watch(config, tmp_path)

    assert requested_windows(summary) == [3, 4, 5]
    assert completed_rounds(tmp_path) == [0, 1, 2, 3]


UNCERTAIN_STREAM = ["normal", "normal", "normal", "boundary", "normal"]


def test_uncertainty_starts_one_round(tmp_path: Path) -> None:
    config = make_config(tmp_path, UNCERTAIN_STREAM, {"uncertainty": {"mean_above": 0.8}})

    summary = watch(config, tmp_path)

    assert requested_windows(summary) == [3]
    assert summary.reports[2].figures["uncertainty_mean"] > 0.8
    assert all(report.figures["uncertainty_mean"] <= 0.8 for index, report in enumerate(summary.reports) if index != 2)
    assert completed_rounds(tmp_path) == [0, 1]


def test_restart_rereading_windows_starts_no_round(tmp_path: Path) -> None:
    config = make_config(tmp_path, UNCERTAIN_STREAM, {"uncertainty": {"mean_above": 0.8}})
    watch(config, tmp_path)

    # As if the position had been lost: the restarted watcher reads every window
    # again, and rows near the boundary stay uncertain for the new model too.
    with Watcher(config, output_dir=tmp_path / "run") as watcher:
        watcher.state.set({POSITION_KEY: watcher.source.start_position()})
        again = watcher.run()
        requests = watcher.state.requests()

    assert again.windows == 4
    assert again.rounds_requested == 0
    assert again.reports[2].action == "already claimed"
    assert len(requests) == 1
    assert requests[0].status == REQUEST_SUCCEEDED
    assert completed_rounds(tmp_path) == [0, 1]


class KilledLogisticRegression(LogisticRegression):
    """Logistic regression whose fit raises KeyboardInterrupt, as a killed process would, while the counter file is above 0."""

    def __init__(self, counter_path: str = "", C: float = 1.0, max_iter: int = 100) -> None:
        super().__init__(C=C, max_iter=max_iter)
        self.counter_path = counter_path

    def fit(self, features, labels, sample_weight=None):
        counter = Path(self.counter_path)
        if counter.exists() and int(counter.read_text()) > 0:
            counter.write_text("0")
            raise KeyboardInterrupt
        return super().fit(features, labels, sample_weight=sample_weight)


def test_round_killed_midway_resumes_same_round(tmp_path: Path) -> None:
    counter = tmp_path / "kill"
    config = make_config(tmp_path, UNCERTAIN_STREAM, {"uncertainty": {"mean_above": 0.8}}).with_overrides(
        **{"model.estimator": f"{__name__}.KilledLogisticRegression", "model.params": {"counter_path": str(counter)}}
    )

    def kill_next_fit(report) -> None:
        if report.action == "round requested":
            counter.write_text("1")

    with pytest.raises(KeyboardInterrupt):
        watch(config, tmp_path, on_window=kill_next_fit)
    # Killed while training round 1: its tasks and labels are stored, but the round is not completed.
    assert completed_rounds(tmp_path) == [0]

    summary = watch(config, tmp_path)
    with Watcher(config, output_dir=tmp_path / "run") as watcher:
        (request,) = watcher.state.requests()

    assert summary.rounds_requested == 0
    assert summary.rounds_succeeded == 1
    assert summary.windows == 1
    assert request.target_round == 1
    assert request.status == REQUEST_SUCCEEDED
    assert completed_rounds(tmp_path) == [0, 1]
    with LabelStore(tmp_path / "run" / "labels.db") as store:
        assert len(store.tasks(round_index=1)) == 10


def test_uncertain_rows_count_resets_after_round(tmp_path: Path) -> None:
    # Every row counts (min_uncertainty 0): 100, 200, 300 -> round, then 100, 200, 300 -> round.
    config = make_config(
        tmp_path, ["normal"] * 7, {"uncertain_rows": {"count_at_least": 250, "min_uncertainty": 0.0}}
    )

    summary = watch(config, tmp_path)

    assert requested_windows(summary) == [3, 6]
    assert [report.figures["uncertain_rows"] for report in summary.reports] == [100, 200, 300, 100, 200, 300]
    assert completed_rounds(tmp_path) == [0, 1, 2]


def test_staleness_starts_round_when_version_old(tmp_path: Path) -> None:
    # Round 0 is dated at row 99. Window k ends at row 100k + 99: ages 100, 200, 300 (> 250) -> round;
    # the new version is dated at that window's end, so the ages restart.
    config = make_config(tmp_path, ["normal"] * 7, {"staleness": {"max_age_s": 250}})

    summary = watch(config, tmp_path)

    assert requested_windows(summary) == [3, 6]
    assert [report.figures["version_age_s"] for report in summary.reports] == [100, 200, 300, 100, 200, 300]


def test_cooldown_holds_back_rounds(tmp_path: Path) -> None:
    # Stale on every window (age >= 100 > 50); a round at t=199 cools down until t=449.
    config = make_config(tmp_path, ["normal"] * 8, {"staleness": {"max_age_s": 50}, "cooldown_s": 250})

    summary = watch(config, tmp_path)

    assert requested_windows(summary) == [1, 4, 7]
    assert [report.action for report in summary.reports[:4]] == ["round requested", "cooldown", "cooldown", "round requested"]
    assert completed_rounds(tmp_path) == [0, 1, 2, 3]


class FlakyLogisticRegression(LogisticRegression):
    """Logistic regression whose fit fails while the counter file contains a number above 0, counting it down."""

    def __init__(self, counter_path: str = "", C: float = 1.0, max_iter: int = 100) -> None:
        super().__init__(C=C, max_iter=max_iter)
        self.counter_path = counter_path

    def fit(self, features, labels, sample_weight=None):
        counter = Path(self.counter_path)
        left = int(counter.read_text()) if counter.exists() else 0
        if left > 0:
            counter.write_text(str(left - 1))
            raise RuntimeError(f"injected training failure ({left} left)")
        return super().fit(features, labels, sample_weight=sample_weight)


def test_failing_round_retried_with_backoff(tmp_path: Path) -> None:
    counter = tmp_path / "failures_left"
    config = make_config(
        tmp_path, ["normal"] * 5, {"staleness": {"max_age_s": 250}}
    ).with_overrides(**{"model.estimator": f"{__name__}.FlakyLogisticRegression", "model.params": {"counter_path": str(counter)}})
    clock = FakeClock()

    def fail_next_two(report) -> None:
        if report.index == 1:
            counter.write_text("2")

    summary = watch(config, tmp_path, clock, on_window=fail_next_two)

    with Watcher(config, output_dir=tmp_path / "run") as watcher:
        (request,) = watcher.state.requests()
    # Round requested on window 3; attempts fail, wait 1 s, fail, wait 2 s, succeed.
    assert requested_windows(summary) == [3]
    assert summary.windows == 4
    assert summary.round_failures == 2
    assert summary.rounds_succeeded == 1
    assert clock.sleeps == [1.0, 2.0]
    assert request.attempts == 3
    assert request.status == REQUEST_SUCCEEDED
    assert "injected training failure" in request.last_error
    assert completed_rounds(tmp_path) == [0, 1]


def test_round_abandoned_after_max_failures(tmp_path: Path) -> None:
    counter = tmp_path / "failures_left"
    config = make_config(
        tmp_path, ["normal"] * 5, {"staleness": {"max_age_s": 250}}, max_consecutive_failures=2
    ).with_overrides(**{"model.estimator": f"{__name__}.FlakyLogisticRegression", "model.params": {"counter_path": str(counter)}})
    clock = FakeClock()

    def always_fail(report) -> None:
        counter.write_text("100")

    summary = watch(config, tmp_path, clock, on_window=always_fail)

    assert summary.round_failures == 2
    assert summary.rounds_abandoned == 1
    assert summary.windows == 4
    assert clock.sleeps == [1.0]
    assert completed_rounds(tmp_path) == [0]


def feedback_config(tmp_path: Path):
    config = make_config(tmp_path, ["normal"] * 3, {"drift": {"min_score": 1e9}})
    return config.with_overrides(
        **{
            "monitoring.watch.source": {"kind": "feedback", "path": str(tmp_path / "served.db")},
            "loop.rounds": 1,
        }
    )


def test_malformed_feedback_windows_counted_and_skipped(tmp_path: Path) -> None:
    config = feedback_config(tmp_path)
    ActiveLearningLoop(config, output_dir=tmp_path / "run").run()
    rng = np.random.default_rng(1)
    store = UncertainRowStore(tmp_path / "served.db")
    store.append(rng.normal(size=(WINDOW, 2)), np.full(WINDOW, 0.6), "v1")
    with_nan = rng.normal(size=(WINDOW, 2))
    with_nan[5, 1] = np.nan
    store.append(with_nan, np.full(WINDOW, 0.6), "v1")
    store.append(rng.normal(size=(WINDOW, 3)), np.full(WINDOW, 0.6), "v2")
    store.append(rng.normal(size=(WINDOW, 2)), np.full(WINDOW, 0.6), "v1")
    store.close()

    with Watcher(config, output_dir=tmp_path / "run") as watcher:
        summary = watcher.run(once=True)
        malformed_count = watcher.state.counter("count.malformed_windows")

    assert [report.status for report in summary.reports] == ["checked", "malformed", "malformed", "checked"]
    assert "NaN" in summary.reports[1].message
    assert "3 features" in summary.reports[2].message
    assert summary.malformed == 2
    assert malformed_count == 2


class ScriptedSource:
    """A live source that returns the windows it was given, one per position."""

    clock = "wall"

    def __init__(self, windows: list[np.ndarray]) -> None:
        self.windows = windows

    def start_position(self) -> int:
        return 0

    def read(self, position: int) -> LiveWindow | None:
        if position >= len(self.windows):
            return None
        return LiveWindow(f"scripted:{position}", self.windows[position], 1.0, position + 1, position + 1)

    def finished(self, position: int) -> bool:
        return position >= len(self.windows)

    def recent_features(self, until: int, n_rows: int) -> np.ndarray:
        return np.concatenate(self.windows[:until])[-n_rows:]

    def describe(self) -> str:
        return "scripted windows"


def test_empty_window_counted_and_skipped(tmp_path: Path) -> None:
    config = feedback_config(tmp_path)
    ActiveLearningLoop(config, output_dir=tmp_path / "run").run()
    normal = np.random.default_rng(2).normal(size=(WINDOW, 2))
    source = ScriptedSource([np.empty((0, 2)), normal, np.empty((0, 2))])

    with Watcher(config, output_dir=tmp_path / "run", source=source) as watcher:
        summary = watcher.run()

    assert [report.status for report in summary.reports] == ["empty", "checked", "empty"]
    assert summary.empty == 2
    assert summary.checked == 1
