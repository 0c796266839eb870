"""The watcher: check live windows against the live version's training data and start rounds.

For each window the watcher

1. scores the rows with the live model (predictions and margin uncertainty)
   and, for a replay, measures the model's accuracy on them before any round
   trains on them (prequential evaluation, reported only);
2. tests the window for drift against the reference, the rows the live
   version was trained on (:class:`~al_ray.monitoring.drift.DriftDetector`);
3. evaluates the trigger policies (:mod:`al_ray.monitoring.triggers`);
4. when a policy fires outside the cooldown and no round is pending,
   records the triggers and a round request in its state file in one
   transaction. Then it starts the round: locally (the run resumed for one
   more round) or as a Ray job.

A failed round is counted, logged and retried with exponential backoff while
the watcher keeps reading windows; after ``max_consecutive_failures``
attempts the request is abandoned and a later trigger may start a new one.
An empty or malformed window is reported, counted and skipped. After a round
the live model and the reference are reloaded: the reference becomes the new
version's training data.

The replay's pool: a replayed round may query only rows the replay has reported.
The loop receives a split in which the initial labeled set is the initial
windows, the pool every row replayed since, and the test set a seeded share of
the replayed rows that is never queried (see :meth:`ReplaySource.split`). Rows
not yet replayed are in no set, so nothing from the future is queried,
trained on or tested on.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from al_ray.config import RunConfig
from al_ray.errors import AlRayError, ConfigError
from al_ray.labels import LabelStore
from al_ray.loop.model_io import load_model
from al_ray.loop.runner import default_output_dir, load_data
from al_ray.monitoring.live_sources import (
    FeedbackSource,
    LiveSource,
    LiveWindow,
    ReplaySource,
    feedback_identity,
    replay_identity,
    source_identity,
)
from al_ray.monitoring.round_start import (
    LocalRoundStarter,
    RoundStarter,
    SubmitRoundStarter,
    label_store_location,
)
from al_ray.monitoring.triggers import (
    POLICIES,
    Decision,
    WindowFigures,
    cooldown_remaining_s,
    evaluate_policies,
    trigger_id,
)
from al_ray.monitoring.watch_records import WatchRecorder
from al_ray.monitoring.watch_state import (
    REQUEST_ABANDONED,
    REQUEST_ENDED,
    REQUEST_SUCCEEDED,
    RoundRequest,
    WatchState,
)
from al_ray.strategies.measures import margin

__all__ = ["POSITION_KEY", "LiveVersion", "RoundEvent", "WatchSummary", "Watcher", "WindowReport"]

logger = logging.getLogger(__name__)

POSITION_KEY = "source.position"
"""State key of the source position the next window is read from."""

# Other keys of the watcher's state file.
_SOURCE_IDENTITY = "source.identity"
_SEEN_UNTIL = "source.seen_until"
_VERSION_ROUND = "version.round"
_VERSION_TIME = "version.time_s"
_REFERENCE_UNTIL = "version.reference_until"
_UNCERTAIN_ROWS = "version.uncertain_rows"
_LAST_ROUND_TIME = "round.last_start_time_s"
_WINDOWS = "count.windows"
_EMPTY = "count.empty_windows"
_MALFORMED = "count.malformed_windows"
_FAILURES = "count.round_failures"


@dataclass
class LiveVersion:
    """The model in service and the data it was trained on."""

    round_index: int
    model: object
    reference: np.ndarray
    """Features of the labeled rows the model was trained on, ``(n_rows, n_features)``."""
    detector: object
    time_s: float
    """When the version was trained, in the source's clock."""


@dataclass(frozen=True)
class WindowReport:
    """The watcher's record of one window: its figures, decisions and action."""

    index: int
    window_id: str
    n_rows: int
    status: str
    """``checked``, ``empty`` or ``malformed``."""
    live_round: int | None
    end_position: int
    accuracy: float | None = None
    """The live model's accuracy on the window before any round trained on it; replay only."""
    figures: dict[str, float] = field(default_factory=dict)
    drifted: bool | None = None
    drifted_features: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()
    action: str = "none"
    """``none``, ``round requested``, ``cooldown``, ``round pending`` or ``already claimed``."""
    message: str = ""


@dataclass(frozen=True)
class RoundEvent:
    """The outcome of one attempt at a round the watcher started."""

    target_round: int
    window_id: str
    """The window whose triggers requested the round; ``initial windows`` for round 0 of a replay."""
    policies: tuple[str, ...]
    status: str
    """``completed``, ``ended`` (the loop stopped without a new round), ``failed`` or ``abandoned``."""
    attempt: int
    detail: str = ""
    """The loop's stop status, or the error of a failed attempt."""
    retry_in_s: float | None = None
    """Seconds until the next attempt of a failed round; None otherwise."""


@dataclass
class WatchSummary:
    """Counts of one watcher run (this process, not the state file's totals)."""

    windows: int = 0
    checked: int = 0
    empty: int = 0
    malformed: int = 0
    rounds_requested: int = 0
    rounds_succeeded: int = 0
    rounds_ended: int = 0
    round_failures: int = 0
    rounds_abandoned: int = 0
    reports: list[WindowReport] = field(default_factory=list)


class Watcher:
    """Watch live traffic for one run and start its rounds.

    Parameters
    ----------
    config : RunConfig
    output_dir : path, optional
        The run's output folder; defaults to the one ``al-ray run`` uses.
    config_path : path, optional
        The config file; submitted rounds need it.
    source : LiveSource, optional
        Defaults to the source ``monitoring.watch.source`` describes.
    starter : RoundStarter, optional
        Defaults to the mode ``monitoring.watch.rounds`` names.
    on_window : callable, optional
        Called with each :class:`WindowReport`.
    on_round : callable, optional
        Called with a :class:`RoundEvent` after each attempt at a round.
    sleep, clock : callables, optional
        ``time.sleep`` and ``time.time`` unless a test passes its own.
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        output_dir: str | Path | None = None,
        config_path: str | Path | None = None,
        source: LiveSource | None = None,
        starter: RoundStarter | None = None,
        on_window: Callable[[WindowReport], None] | None = None,
        on_round: Callable[[RoundEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.watch = config.monitoring.watch
        self.triggers = config.monitoring.triggers
        if not self.triggers.any_policy:
            raise ConfigError(
                "no trigger policy is set, so the watcher would never start a round; set at least one of "
                "monitoring.triggers.drift, uncertainty, uncertain_rows or staleness"
            )
        if self.watch.source.kind == "replay" and self.watch.rounds.mode == "submit" and starter is None:
            raise ConfigError(
                "a replay starts its rounds locally, because its pool is the rows replayed so far, which a "
                "submitted job cannot see; set monitoring.watch.rounds.mode: local"
            )
        if self.watch.rounds.mode == "submit" and starter is None and config_path is None:
            raise ConfigError("submitted rounds need the config file; pass config_path (the CLI passes CONFIG)")
        self.output_dir = Path(output_dir) if output_dir is not None else default_output_dir(config)
        self.config_path = Path(config_path) if config_path is not None else None
        self.on_window = on_window or (lambda report: None)
        self.on_round = on_round or (lambda event: None)
        self._sleep = sleep
        self._clock = clock
        self._ray_stack = contextlib.ExitStack()
        self.data = load_data(config)
        # Checked before any file exists, so a watcher that cannot start leaves nothing behind.
        replay = isinstance(source, ReplaySource) or (source is None and self.watch.source.kind == "replay")
        version_time = self._check_run_to_watch(bootstraps=replay)
        state_path = Path(self.watch.state_path or (self.output_dir / "watch.db"))
        identity = source_identity(source) if source is not None else self._configured_identity()
        self._check_state_source(state_path, identity)
        self.source = source if source is not None else self._make_source()
        self.state = WatchState(state_path)
        try:
            if self.state.get(_SOURCE_IDENTITY) is None:
                self.state.set({_SOURCE_IDENTITY: identity})
            self.starter = starter if starter is not None else self._make_starter()
            self.recorder = WatchRecorder(
                config, self.output_dir, self.state, version_time=version_time, policies=self._policy_list()
            )
        except BaseException:
            # For example a metrics port in use: release what is open, then report it.
            self.state.close()
            if isinstance(self.source, FeedbackSource):
                self.source.close()
            raise
        self.live: LiveVersion | None = None
        self._constant_features: set[str] = set()
        self.summary = WatchSummary()
        uncertain = config.monitoring.triggers.uncertain_rows
        self._min_uncertainty = (
            uncertain.min_uncertainty
            if uncertain is not None and uncertain.min_uncertainty is not None
            else config.serving.feedback.uncertainty_threshold
        )

    # Construction.

    def _check_run_to_watch(self, *, bootstraps: bool) -> float | None:
        """Reject a run with no completed round, unless a replay trains round 0; return that round's unix time.

        Reads the label store only; nothing is created, so a rejected watch
        leaves no output folder, state file or MLflow run behind.
        """
        location = label_store_location(self.config, self.output_dir)
        if isinstance(location, Path) and not location.exists():
            if bootstraps:
                return None
            raise ConfigError(
                f"no run to watch: no label store at {location.resolve()}; run `al-ray run CONFIG` first, "
                "or pass the --output of the run"
            )
        with LabelStore(location) as store:
            last = store.last_completed_round()
            records = {row["round_index"]: row for row in store.round_records()}
        if last is None:
            if bootstraps:
                return None
            raise ConfigError(f"the run in {self.output_dir} has no completed round yet; run `al-ray run CONFIG` first")
        completed = records[last].get("completed_at")
        return float(completed) if completed is not None else None

    def _configured_identity(self) -> str:
        source = self.watch.source
        if source.kind == "replay":
            return replay_identity(self.data, source.order)
        return feedback_identity(self._feedback_path())

    def _feedback_path(self) -> str:
        path = self.watch.source.path or self.config.serving.feedback.path
        if path is None:
            raise ConfigError(
                "the feedback source needs a store: set monitoring.watch.source.path or serving.feedback.path "
                "to the file the router writes uncertain rows to"
            )
        return path

    def _check_state_source(self, state_path: Path, identity: str) -> None:
        """Reject a state file that stores the position of another live source."""
        if not state_path.exists():
            return
        with WatchState(state_path) as state:
            stored = state.get(_SOURCE_IDENTITY)
        if stored is not None and stored != identity:
            raise ConfigError(
                f"the watcher's state file {state_path} belongs to another live source ({stored}), not "
                f"{identity}, so its source position and round requests do not apply. To watch this source "
                "from its start, set monitoring.watch.state_path to a new file (or move the old file aside); "
                "to continue the old watch, restore its monitoring.watch.source settings"
            )

    def _make_source(self) -> LiveSource:
        source = self.watch.source
        window = self.config.monitoring.drift.window
        options = {
            "window_kind": window.kind,
            "window_size": window.size,
            "window_step": window.step,
            "window_seconds": window.seconds,
        }
        if source.kind == "replay":
            test_size = self.config.data.test_size
            return ReplaySource(
                self.data,
                order=source.order,
                seconds_per_row=source.seconds_per_row,
                initial_windows=source.initial_windows,
                test_share=test_size if test_size < 1 else test_size / len(self.data),
                seed=self.config.seed,
                **options,
            )
        return FeedbackSource(self._feedback_path(), clock=self._clock, **options)

    def _make_starter(self) -> RoundStarter:
        rounds = self.watch.rounds
        if rounds.mode == "submit":
            if self.config_path is None or rounds.address is None:
                raise ConfigError("submitted rounds need the config file and monitoring.watch.rounds.address")
            return SubmitRoundStarter(
                self.config, self.config_path, self.output_dir, address=rounds.address, timeout_s=rounds.timeout_s
            )
        split_provider = None
        if isinstance(self.source, ReplaySource):
            replay = self.source

            def split_provider():
                seen = int(self.state.get(_SEEN_UNTIL) or replay.start_position())
                return replay.split(seen)

        return LocalRoundStarter(self.config, self.output_dir, split_provider=split_provider, ray_stack=self._ray_stack)

    def close(self) -> None:
        self.recorder.close()
        self.state.close()
        if isinstance(self.source, FeedbackSource):
            self.source.close()
        self._ray_stack.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The watch.

    def run(self, *, max_windows: int | None = None, once: bool = False) -> WatchSummary:
        """Watch until the source ends, ``max_windows`` windows were read, or (with ``once``) none is ready.

        A round that failed and waits for its retry is retried before the
        watcher returns, except with ``once``. Its request stays in the state
        file either way, so the next watcher run retries it.
        """
        self.recorder.check_audit_chain()
        self._bootstrap()
        self._load_live_version()
        position = int(self.state.get(POSITION_KEY) or self.source.start_position())
        logger.info(
            "watching %s from position %d; live version: round %d; policies: %s",
            self.source.describe(), position, self.live.round_index, self._policy_names(),
        )
        while True:
            self._attempt_due_request()
            if max_windows is not None and self.summary.windows >= max_windows:
                break
            window = self.source.read(position)
            if window is None:
                if once or self.source.finished(position):
                    break
                self._sleep(self._wait_s())
                continue
            self._process(window)
            position = window.next_position
        if not once:
            self._drain()
        pending = self.state.pending_request()
        if pending is not None:
            logger.warning(
                "round %d for window %s is still pending after %d failed attempts; the next `al-ray watch` retries it",
                pending.target_round, pending.window_id, pending.attempts,
            )
        logger.info(
            "watch ended: %d windows (%d checked, %d empty, %d malformed), %d rounds requested, %d succeeded, "
            "%d failed attempts",
            self.summary.windows, self.summary.checked, self.summary.empty, self.summary.malformed,
            self.summary.rounds_requested, self.summary.rounds_succeeded, self.summary.round_failures,
        )
        return self.summary

    def _policy_list(self) -> list[str]:
        return [name for name in POLICIES if getattr(self.triggers, name) is not None]

    def _policy_names(self) -> str:
        return ", ".join(self._policy_list())

    def _wait_s(self) -> float:
        pending = self.state.pending_request()
        wait = self.watch.poll_interval_s
        if pending is not None:
            wait = min(wait, max(0.0, pending.next_attempt_at - self._clock()))
        return wait

    def _drain(self) -> None:
        """Retry the pending round until it succeeds, ends or is abandoned."""
        while (pending := self.state.pending_request()) is not None:
            delay = pending.next_attempt_at - self._clock()
            if delay > 0:
                logger.info("waiting %.1f s to retry round %d", delay, pending.target_round)
                self._sleep(delay)
            self._attempt_due_request()

    # The live version.

    def _bootstrap(self) -> None:
        """Train the first model on the replay's initial windows when the run has none yet."""
        if not isinstance(self.source, ReplaySource) or self._last_completed_round() is not None:
            return
        logger.info(
            "no model yet: training round 0 on the first %d replayed rows", self.source.initial_end
        )
        self.state.set({_SEEN_UNTIL: self.source.initial_end})
        outcome = self.starter.start(0)
        if not outcome.completed:
            raise ConfigError(f"training the first model on the replay's initial windows ended with {outcome.status!r}")
        self.on_round(RoundEvent(0, "initial windows", (), "completed", 1))

    def _last_completed_round(self) -> int | None:
        location = label_store_location(self.config, self.output_dir)
        if isinstance(location, Path) and not location.exists():
            return None
        with LabelStore(location) as store:
            return store.last_completed_round()

    def _load_live_version(self) -> None:
        """Load the last completed round's model and make its training rows the reference."""
        from al_ray.monitoring.drift import DriftDetector

        location = label_store_location(self.config, self.output_dir)
        if isinstance(location, Path) and not location.exists():
            raise ConfigError(
                f"no run to watch: no label store at {location.resolve()}; run `al-ray run CONFIG` first, "
                "or pass the --output of the run"
            )
        with LabelStore(location) as store:
            last = store.last_completed_round()
            records = {row["round_index"]: row for row in store.round_records()}
            labels = store.labels()
        if last is None:
            raise ConfigError(f"the run in {self.output_dir} has no completed round yet; run `al-ray run CONFIG` first")
        record = records[last]
        model = load_model(Path(record["model_path"]))
        reference = self._reference(labels)
        probabilities = model.predict_proba(reference)
        detector = DriftDetector(
            reference,
            self.data.feature_names,
            self.config.monitoring.drift,
            reference_predictions=np.argmax(probabilities, axis=1),
            reference_uncertainty=margin(probabilities),
            warn_constant=False,
        )
        self._log_constant_features(detector.constant_features)
        self.live = LiveVersion(last, model, reference, detector, self._version_time(last, record))
        self.state.set({_VERSION_ROUND: last, _VERSION_TIME: self.live.time_s})
        if record.get("completed_at") is not None:
            self.recorder.round_version(float(record["completed_at"]))
        logger.info(
            "live version: round %d; reference: %d rows (%s)", last, reference.shape[0], self.watch.reference
        )

    def _log_constant_features(self, constant: dict[str, float]) -> None:
        """Warn about features constant in the reference, once for each new set of them.

        Every round makes a new reference, and with a labeled reference the same
        features often stay constant; repeating the warning each round says nothing new.
        """
        if not constant or set(constant) == self._constant_features:
            self._constant_features = set(constant)
            return
        self._constant_features = set(constant)
        listed = ", ".join(f"{name} ({value:g})" for name, value in constant.items())
        logger.warning(
            "features constant in the reference: %s; a window in which one of them varies counts as drift "
            "for that feature (logged again only when this set changes)",
            listed,
        )

    def _reference(self, labels: dict[int, str]) -> np.ndarray:
        """Return the rows that live windows are compared with, chosen by ``monitoring.watch.reference``.

        ``labeled`` is the live version's training rows. Active learning
        picks them for their uncertainty, so features that go with
        uncertainty (such as the hour of day) differ from live traffic even
        when the traffic did not move. ``recent_traffic`` is the live rows
        read just before the version was trained, a sample of the traffic
        with no selection.
        """
        labeled = np.fromiter(sorted(labels), dtype=np.int64, count=len(labels))
        if self.watch.reference == "labeled":
            return self.data.subset(labeled).features
        n_rows = self.watch.reference_rows or self.config.monitoring.drift.window.size
        until = self.state.get(_REFERENCE_UNTIL)
        if until is None and isinstance(self.source, ReplaySource):
            until = self.source.start_position()
        if until is None:
            logger.info(
                "no live traffic was read before the live version was trained; the reference is its %d training rows",
                labeled.size,
            )
            return self.data.subset(labeled).features
        recent = self.source.recent_features(int(until), n_rows)
        if recent.shape[0] < 2:
            logger.warning(
                "only %d live rows precede the live version; the reference is its %d training rows instead",
                recent.shape[0], labeled.size,
            )
            return self.data.subset(labeled).features
        return recent

    def _version_time(self, round_index: int, record: dict) -> float:
        """Return when the live version was trained, in the source's clock."""
        stored_round = self.state.get(_VERSION_ROUND)
        stored_time = self.state.get_float(_VERSION_TIME)
        if stored_round is not None and int(stored_round) == round_index and stored_time is not None:
            return stored_time
        if isinstance(self.source, ReplaySource):
            if round_index == 0:
                return self.source.version_time_s()
            # A round the watcher did not start: date it by the rows replayed so far.
            seen = int(self.state.get(_SEEN_UNTIL) or self.source.start_position())
            return self.source.version_time_s() if seen == 0 else (seen - 1) * self.source.seconds_per_row
        completed = record.get("completed_at")
        return float(completed) if completed is not None else self._clock()

    # One window.

    def _process(self, window: LiveWindow) -> WindowReport:
        index = self.state.increment(_WINDOWS)
        self.summary.windows += 1
        seen_until = max(int(self.state.get(_SEEN_UNTIL) or 0), window.end_position)
        problem = self._problem(window)
        if problem is not None:
            reason, message = problem
            return self._reject(window, index, reason, message, seen_until)

        live = self._current_live_version()
        probabilities = live.model.predict_proba(window.features)
        predictions = np.argmax(probabilities, axis=1)
        uncertainty = margin(probabilities)
        accuracy = None
        if window.labels is not None:
            accuracy = float(np.mean(predictions == window.labels))
        try:
            result = live.detector.check(
                window.features, predictions=predictions, uncertainty=uncertainty, label=window.window_id
            )
        except AlRayError as error:
            return self._reject(window, index, "malformed", str(error), seen_until)

        new_uncertain = int(np.count_nonzero(uncertainty >= self._min_uncertainty))
        uncertain_rows = int(self.state.get(_UNCERTAIN_ROWS) or 0) + new_uncertain
        figures = WindowFigures(
            window_id=window.window_id,
            time_s=window.time_s,
            drift_score=result.score,
            drift_share=result.drift_share,
            uncertainty_mean=float(uncertainty.mean()),
            uncertainty_q90=float(np.quantile(uncertainty, 0.9)),
            uncertain_rows=uncertain_rows,
            version_time_s=live.time_s,
        )
        decisions = evaluate_policies(self.triggers, figures)
        meta: dict[str, object] = {
            POSITION_KEY: window.next_position,
            _SEEN_UNTIL: seen_until,
            _UNCERTAIN_ROWS: uncertain_rows,
        }
        action = self._act(window, decisions, meta)
        if action != "round requested":
            self.state.set(meta)

        reported = _reported_figures(figures, result, live, accuracy)
        self.recorder.window_checked(index, window.window_id, reported, result, decisions, action)
        if self.watch.reports == "every_check" or (self.watch.reports == "drifted" and result.drifted):
            self.recorder.write_report(result, window.window_id, decisions)
        self.summary.checked += 1
        report = WindowReport(
            index=index,
            window_id=window.window_id,
            n_rows=int(window.features.shape[0]),
            status="checked",
            live_round=live.round_index,
            end_position=window.end_position,
            accuracy=accuracy,
            figures=reported,
            drifted=result.drifted,
            drifted_features=result.drifted_features,
            decisions=tuple(decisions),
            action=action,
        )
        self._report(report)
        return report

    def _problem(self, window: LiveWindow) -> tuple[str, str] | None:
        """Return (reason, message) when the window cannot be checked, else None."""
        features = np.asarray(window.features)
        if features.ndim == 0 or features.shape[0] == 0:
            return "empty", f"window {window.window_id} has no rows"
        if features.ndim != 2:
            return "malformed", (
                f"window {window.window_id} has features of shape {features.shape}; expected (n_rows, n_features)"
            )
        width = self.data.n_features
        if features.shape[1] != width:
            return "malformed", (
                f"window {window.window_id} has {features.shape[1]} features, the live model takes {width}; "
                "check that the service sends the training features in their order"
            )
        if features.dtype.kind not in "biuf":
            return "malformed", f"window {window.window_id} has non-numeric features (dtype {features.dtype})"
        bad = ~np.isfinite(features).all(axis=1)
        if bad.any():
            return "malformed", (
                f"window {window.window_id} has {int(bad.sum())} rows with NaN or infinite features, "
                "which the live model cannot score"
            )
        return None

    def _reject(self, window: LiveWindow, index: int, reason: str, message: str, seen_until: int) -> WindowReport:
        self.state.set({POSITION_KEY: window.next_position, _SEEN_UNTIL: seen_until})
        self.state.increment(_EMPTY if reason == "empty" else _MALFORMED)
        if reason == "empty":
            self.summary.empty += 1
        else:
            self.summary.malformed += 1
        self.recorder.window_rejected(index, window.window_id, reason, message)
        report = WindowReport(
            index=index,
            window_id=window.window_id,
            n_rows=int(np.asarray(window.features).shape[0]) if np.asarray(window.features).ndim else 0,
            status=reason,
            live_round=None if self.live is None else self.live.round_index,
            end_position=window.end_position,
            message=message,
        )
        self._report(report)
        return report

    def _report(self, report: WindowReport) -> None:
        self.summary.reports.append(report)
        self.on_window(report)

    def _current_live_version(self) -> LiveVersion:
        """Return the live version, reloaded when a round completed outside the watcher."""
        assert self.live is not None  # loaded by run() before the first window
        last = self._last_completed_round()
        if last is not None and last != self.live.round_index:
            logger.info("round %d completed outside the watcher; reloading the live version", last)
            self._load_live_version()
        return self.live

    def _act(self, window: LiveWindow, decisions: list[Decision], meta: dict[str, object]) -> str:
        """Claim the fired triggers and request a round, unless cooldown or a pending round stops it."""
        fired = [decision for decision in decisions if decision.fired]
        if not fired:
            return "none"
        pending = self.state.pending_request()
        if pending is not None:
            logger.info(
                "window %s: a round is already pending for window %s; not requesting another",
                window.window_id, pending.window_id,
            )
            return "round pending"
        remaining = cooldown_remaining_s(self.state.get_float(_LAST_ROUND_TIME), window.time_s, self.triggers.cooldown_s)
        if remaining > 0:
            logger.info("window %s: in cooldown for %.0f s more; no round started", window.window_id, remaining)
            return "cooldown"
        target = (self._last_completed_round() or 0) + 1
        request = self.state.claim(
            window.window_id,
            [(trigger_id(d.policy, window.window_id), d.policy, d.figures, d.reason) for d in fired],
            target,
            window.time_s,
            next_attempt_at=self._clock(),
            meta={**meta, _LAST_ROUND_TIME: window.time_s},
        )
        if request is None:
            logger.info("window %s: its triggers already started a round before a restart", window.window_id)
            return "already claimed"
        self.summary.rounds_requested += 1
        logger.info(
            "window %s: requesting round %d for %s",
            window.window_id, target, ", ".join(decision.policy for decision in fired),
        )
        return "round requested"

    # Round attempts.

    def _attempt_due_request(self) -> None:
        request = self.state.pending_request()
        if request is None or request.next_attempt_at > self._clock():
            return
        policies = self.state.request_policies(request.request_id)
        logger.info(
            "starting round %d (attempt %d) for %s on window %s",
            request.target_round, request.attempts + 1, ", ".join(policies), request.window_id,
        )
        try:
            outcome = self.starter.start(request.target_round)
        except Exception as error:  # noqa: BLE001 - a round can fail anywhere (data, Ray, MLflow, a job); the watcher outlives it
            self._round_failed(request, policies, error)
            return
        attempt = request.attempts + 1
        if outcome.completed:
            self.state.finish(request.request_id, REQUEST_SUCCEEDED)
            self.summary.rounds_succeeded += 1
            self.recorder.round_attempted(request, policies, error=None, status=REQUEST_SUCCEEDED)
            self._after_round(request)
            logger.info("round %d completed for window %s", request.target_round, request.window_id)
            self.on_round(RoundEvent(request.target_round, request.window_id, tuple(policies), "completed", attempt))
        else:
            self.state.finish(request.request_id, REQUEST_ENDED, outcome.status)
            self.summary.rounds_ended += 1
            self.recorder.round_attempted(request, policies, error=None, status=f"{REQUEST_ENDED}: {outcome.status}")
            logger.warning(
                "round %d for window %s did not run: the loop stopped with %r",
                request.target_round, request.window_id, outcome.status,
            )
            self.on_round(
                RoundEvent(request.target_round, request.window_id, tuple(policies), "ended", attempt, outcome.status)
            )

    def _round_failed(self, request: RoundRequest, policies: list[str], error: Exception) -> None:
        attempts = request.attempts + 1
        abandon = attempts >= self.watch.max_consecutive_failures
        delay = min(self.watch.backoff_max_s, self.watch.backoff_initial_s * 2 ** (attempts - 1))
        message = f"{type(error).__name__}: {error}"
        self.state.record_failure(request.request_id, message, self._clock() + delay, abandon=abandon)
        self.state.increment(_FAILURES)
        self.summary.round_failures += 1
        status = REQUEST_ABANDONED if abandon else "failed"
        self.recorder.round_attempted(request, policies, error=message, status=status)
        self.on_round(
            RoundEvent(
                request.target_round, request.window_id, tuple(policies), status, attempts, message,
                retry_in_s=None if abandon else delay,
            )
        )
        if abandon:
            self.summary.rounds_abandoned += 1
            logger.error(
                "round %d for window %s failed %d times; abandoned it, a later trigger may request a new round. "
                "Last error: %s",
                request.target_round, request.window_id, attempts, message,
                exc_info=error,
            )
        else:
            logger.warning(
                "round %d for window %s failed (attempt %d of %d); retrying in %.1f s: %s",
                request.target_round, request.window_id, attempts, self.watch.max_consecutive_failures, delay, message,
                exc_info=error,
            )

    def _after_round(self, request: RoundRequest) -> None:
        """Make the new version live and restart the counts that belong to a version."""
        clock_time = request.source_time_s if self.source.clock == "replay" else self._clock()
        # The traffic the round could see: rows up to the last window read.
        until = self.state.get(_SEEN_UNTIL) if isinstance(self.source, ReplaySource) else self.state.get(POSITION_KEY)
        self.state.set(
            {
                _VERSION_TIME: clock_time,
                _VERSION_ROUND: request.target_round,
                _UNCERTAIN_ROWS: 0,
                _REFERENCE_UNTIL: until if until is not None else 0,
            }
        )
        self._load_live_version()


def _reported_figures(figures: WindowFigures, result, live: LiveVersion, accuracy: float | None) -> dict[str, float]:
    """Return the figures of a checked window that the log, MLflow and the window report show."""
    reported = {
        "drift_score": result.score,
        "drift_share": result.drift_share,
        "drifted": float(result.drifted),
        "uncertainty_mean": figures.uncertainty_mean or 0.0,
        "uncertainty_q90": figures.uncertainty_q90 or 0.0,
        "uncertain_rows": float(figures.uncertain_rows),
        "version_age_s": figures.time_s - live.time_s,
        "live_round": float(live.round_index),
    }
    if accuracy is not None:
        reported["accuracy"] = accuracy
    return reported
