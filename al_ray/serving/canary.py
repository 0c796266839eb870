"""Canary rollout: move traffic to a challenger step by step, promote it or roll it back.

A :class:`CanaryController` walks the challenger's traffic share through
``RolloutConfig.steps`` (for example 0.05, 0.25, 0.5, 1.0). At every poll it
reads the router's stats for the current window and returns a :class:`Decision`:

- ``hold``: the window is from another weight, the challenger has fewer than
  ``min_requests`` requests, the step's ``hold_s`` has not passed, or a guard
  that must have data has none yet.
- ``rollback``: once the challenger has ``min_requests`` requests, any guard
  that fails rolls it back at once, before ``hold_s`` has passed.
- ``advance``: ``hold_s`` has passed, no guard fails, and error rate and p95
  latency have data. Agreement and accuracy may lack data.
- ``promote``: the same, at the last step (weight 1.0).

Guards are judged only once the challenger has ``min_requests`` requests in
the window, so a few early errors cannot roll back a healthy challenger.

:func:`run_rollout` drives a router through the :class:`RouterControl`
protocol, applies each decision, and appends each one to a JSON-lines log.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from al_ray.config import GuardsConfig, RolloutConfig

__all__ = [
    "CanaryController",
    "Decision",
    "GuardCheck",
    "RouterControl",
    "evaluate_guards",
    "run_rollout",
]

logger = logging.getLogger(__name__)

Action = Literal["start", "hold", "advance", "promote", "rollback"]

# Causes of a rollback that are not a guard breach: the rollout was stopped
# before the challenger was judged.
INTERRUPT_CAUSES = frozenset({"stop_event", "max_duration"})

# Figures are ratios of counts, so a value equal to its limit on paper may miss
# it by one rounding step (0.90 - 0.92 is -0.020000000000000018 in floats).
_REL_TOL = 1e-9
_ABS_TOL = 1e-12


class RouterControl(Protocol):
    """The part of a traffic router that a canary rollout drives.

    ``stats()`` returns the current stats window::

        {"window": int, "window_started": unix_ts,
         "weights": {"champion": float, "challenger": float},
         "versions": {"champion": VERSION, "challenger": VERSION}}

    where each ``VERSION`` is::

        {"version": str, "requests": int, "errors": int, "rows": int,
         "latency_ms": {"p50": float | None, "p95": float | None, "count": int},
         "agreement": {"compared": int, "agreed": int},
         "feedback": {"labeled": int, "correct": int}}

    Counts cover the current window only, and every weight change starts a new
    window.
    """

    def stats(self) -> dict:
        """Return the current stats window, in the shape above."""
        ...

    def set_weights(self, challenger: float) -> None:
        """Send ``challenger`` of the traffic to the challenger and the rest to the champion."""
        ...

    def promote(self) -> None:
        """Make the challenger the champion, with weights 1 and 0."""
        ...

    def rollback(self) -> None:
        """Set the challenger's weight to 0."""
        ...


@dataclasses.dataclass(frozen=True)
class GuardCheck:
    """The result of one guard on one stats window.

    Attributes
    ----------
    name
        ``error_rate``, ``p95_latency_ms``, ``p95_latency_ratio``,
        ``agreement`` or ``accuracy_delta``.
    passed
        True or False, or None when the window has too little data to judge.
    observed
        The measured value, or None when it cannot be computed.
    limit
        The configured limit.
    detail
        The figures behind ``observed``, as a short English phrase.
    """

    name: str
    passed: bool | None
    observed: float | None
    limit: float
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Decision:
    """One decision of the canary controller.

    Attributes
    ----------
    action
        ``start``, ``hold``, ``advance``, ``promote`` or ``rollback``.
    step
        Index into ``RolloutConfig.steps`` of the step the decision was made at
        (for ``advance``, the step it moves to).
    challenger_weight
        The challenger's traffic share once the decision is applied: 0.0 after
        a rollback, 1.0 after a promotion.
    reason
        One English sentence that names the figures compared.
    figures
        The figures behind the decision: window, requests, hold time and every
        guard check.
    timestamp
        Unix time of the decision, in seconds.
    cause
        Short machine-readable cause: ``start``, ``guards_passed``,
        ``guard_breach``, ``stop_event``, ``max_duration``, or for a hold
        ``stale_window``, ``min_requests``, ``hold_time`` or ``missing_data``.
    """

    action: Action
    step: int
    challenger_weight: float
    reason: str
    figures: dict[str, Any]
    timestamp: float
    cause: str

    @property
    def interrupted(self) -> bool:
        """Whether this is a rollback because the rollout was stopped, not because of a guard."""
        return self.cause in INTERRUPT_CAUSES

    @property
    def final(self) -> bool:
        """Whether the rollout ends with this decision (promote or rollback)."""
        return self.action in ("promote", "rollback")

    def to_dict(self) -> dict[str, Any]:
        """Return the fields, plus ``interrupted``, as a JSON-ready dict."""
        record = dataclasses.asdict(self)
        record["interrupted"] = self.interrupted
        return record


def _at_most(observed: float, limit: float) -> bool:
    return observed <= limit or math.isclose(observed, limit, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)


def _at_least(observed: float, limit: float) -> bool:
    return observed >= limit or math.isclose(observed, limit, rel_tol=_REL_TOL, abs_tol=_ABS_TOL)


def _lookup(stats: dict, *keys: str) -> Any:
    value: Any = stats
    for depth, key in enumerate(keys):
        if not isinstance(value, dict) or key not in value:
            path = ".".join(keys[: depth + 1])
            raise ValueError(
                f"router stats are missing the key {path!r}; stats() must return the window "
                "shape documented on RouterControl"
            )
        value = value[key]
    return value


def _count(stats: dict, *keys: str) -> int:
    value = _lookup(stats, *keys)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"invalid router stats: {'.'.join(keys)} must be an integer >= 0, got {value!r}")
    return value


def _p95(stats: dict, version: str) -> float | None:
    """Return a version's p95 latency in ms, or None when it is missing or not finite."""
    value = _lookup(stats, "versions", version, "latency_ms", "p95")
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _error_rate_check(guards: GuardsConfig, stats: dict) -> GuardCheck:
    requests = _count(stats, "versions", "challenger", "requests")
    errors = _count(stats, "versions", "challenger", "errors")
    limit = guards.max_error_rate
    if requests == 0:
        return GuardCheck("error_rate", None, None, limit, "no challenger requests in this window")
    rate = errors / requests
    passed = _at_most(rate, limit)
    relation = "<=" if passed else ">"
    detail = f"{errors} errors in {requests} requests = {rate:.4g} {relation} {limit:g}"
    return GuardCheck("error_rate", passed, rate, limit, detail)


def _p95_check(limit: float, stats: dict) -> GuardCheck:
    p95 = _p95(stats, "challenger")
    if p95 is None:
        return GuardCheck("p95_latency_ms", None, None, limit, "no challenger p95 latency in this window")
    passed = _at_most(p95, limit)
    relation = "<=" if passed else ">"
    return GuardCheck("p95_latency_ms", passed, p95, limit, f"challenger p95 {p95:g} ms {relation} {limit:g} ms")


def _p95_ratio_check(limit: float, stats: dict) -> GuardCheck:
    challenger = _p95(stats, "challenger")
    champion = _p95(stats, "champion")
    if challenger is None or champion is None or champion <= 0:
        detail = f"p95 latency not known for both versions (challenger {challenger}, champion {champion})"
        return GuardCheck("p95_latency_ratio", None, None, limit, detail)
    ratio = challenger / champion
    passed = _at_most(ratio, limit)
    relation = "<=" if passed else ">"
    detail = f"p95 {challenger:g} ms / {champion:g} ms = {ratio:.4g} {relation} {limit:g}"
    return GuardCheck("p95_latency_ratio", passed, ratio, limit, detail)


def _agreement_check(limit: float, stats: dict) -> GuardCheck:
    compared = _count(stats, "versions", "challenger", "agreement", "compared")
    agreed = _count(stats, "versions", "challenger", "agreement", "agreed")
    # NOTE: a single compared row is enough to judge agreement, because the
    # config sets no minimum count of compared rows.
    if compared == 0:
        return GuardCheck("agreement", None, None, limit, "no rows compared with the champion in this window")
    share = agreed / compared
    passed = _at_least(share, limit)
    relation = ">=" if passed else "<"
    detail = f"{agreed} of {compared} rows agree = {share:.4g} {relation} {limit:g}"
    return GuardCheck("agreement", passed, share, limit, detail)


def _accuracy_check(limit: float, min_labels: int, stats: dict) -> GuardCheck:
    accuracy: dict[str, float] = {}
    labeled: dict[str, int] = {}
    for version in ("challenger", "champion"):
        labeled[version] = _count(stats, "versions", version, "feedback", "labeled")
        correct = _count(stats, "versions", version, "feedback", "correct")
        if labeled[version] >= min_labels:
            accuracy[version] = correct / labeled[version]
    if len(accuracy) < 2:
        detail = (
            f"labeled feedback rows: challenger {labeled['challenger']}, champion {labeled['champion']}; "
            f"each needs {min_labels}"
        )
        return GuardCheck("accuracy_delta", None, None, limit, detail)
    delta = accuracy["challenger"] - accuracy["champion"]
    passed = _at_least(delta, limit)
    relation = ">=" if passed else "<"
    detail = (
        f"accuracy {accuracy['challenger']:.4g} - {accuracy['champion']:.4g} = {delta:.4g} {relation} {limit:g} "
        f"on {labeled['challenger']} and {labeled['champion']} labeled rows"
    )
    return GuardCheck("accuracy_delta", passed, delta, limit, detail)


def evaluate_guards(guards: GuardsConfig, stats: dict) -> list[GuardCheck]:
    """Check the challenger in one stats window against every enabled guard.

    Parameters
    ----------
    guards
        The limits. A guard whose limit is None is disabled and left out.
    stats
        One window of :meth:`RouterControl.stats`.

    Returns
    -------
    list of GuardCheck
        In the order ``error_rate``, ``p95_latency_ms``, ``p95_latency_ratio``,
        ``agreement``, ``accuracy_delta``. A check has ``passed=None`` when the
        window lacks its data: no challenger requests, an unknown p95, no rows
        compared with the champion, or fewer than ``min_feedback_labels``
        labeled rows for either version.

    Raises
    ------
    ValueError
        If ``stats`` lacks a key the guards read, or a count is not an integer >= 0.
    """
    checks = [_error_rate_check(guards, stats)]
    if guards.max_p95_latency_ms is not None:
        checks.append(_p95_check(guards.max_p95_latency_ms, stats))
    if guards.max_p95_latency_ratio is not None:
        checks.append(_p95_ratio_check(guards.max_p95_latency_ratio, stats))
    if guards.min_agreement is not None:
        checks.append(_agreement_check(guards.min_agreement, stats))
    if guards.min_accuracy_delta is not None:
        checks.append(_accuracy_check(guards.min_accuracy_delta, guards.min_feedback_labels, stats))
    return checks


class CanaryController:
    """State machine of one canary rollout, from the first step to promote or rollback.

    The controller neither polls nor talks to a router: :func:`run_rollout`
    does. Call :meth:`start` once, then :meth:`evaluate` with each stats window.

    Rules, checked in this order on every window:

    1. A window whose challenger weight differs from the current step's is
       stale (the router has not applied the step yet): hold.
    2. Fewer than ``rollout.min_requests`` challenger requests: hold, and no
       guard is judged yet.
    3. Any guard that fails: rollback, even before ``hold_s`` has passed.
    4. Less than ``rollout.hold_s`` seconds at this step: hold.
    5. A guard that must have data has none: hold until it has. These are the
       error rate, the absolute p95 latency, and the p95 latency ratio while
       the champion still gets traffic (at weight 1.0 it gets none, so the ratio
       cannot be measured there). Agreement and accuracy may lack data.
    6. Otherwise advance to the next step, or promote at the last one.

    Once the controller has promoted or rolled back it is finished, and
    :meth:`evaluate` returns that final decision again without changing state.

    Parameters
    ----------
    rollout
        The steps, hold time per step and requests needed per step.
    guards
        The limits the challenger must keep.
    clock
        Monotonic seconds, for hold times.
    wall_clock
        Unix seconds, stamped on each decision.
    """

    def __init__(
        self,
        rollout: RolloutConfig,
        guards: GuardsConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.rollout = rollout
        self.guards = guards
        self._clock = clock
        self._wall_clock = wall_clock
        self._step: int | None = None
        self._started_at = 0.0
        self._step_started_at = 0.0
        self._final: Decision | None = None

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has been called."""
        return self._step is not None

    @property
    def finished(self) -> bool:
        """Whether the rollout has ended in a promotion or a rollback."""
        return self._final is not None

    @property
    def step(self) -> int:
        """Index of the current step in ``rollout.steps``, or 0 before :meth:`start`."""
        return self._step or 0

    @property
    def challenger_weight(self) -> float:
        """The challenger's traffic share that the controller has set, 0 before start and after rollback."""
        if self._final is not None:
            return self._final.challenger_weight
        return self.rollout.steps[self._step] if self._step is not None else 0.0

    @property
    def elapsed_s(self) -> float:
        """Seconds on ``clock`` since :meth:`start`, or 0 before it."""
        return self._clock() - self._started_at if self.started else 0.0

    def start(self) -> Decision:
        """Begin the rollout at the first step.

        Raises
        ------
        RuntimeError
            If the controller has already started.
        """
        if self.started:
            raise RuntimeError("the canary rollout has already started; create a new CanaryController")
        now = self._clock()
        self._step = 0
        self._started_at = now
        self._step_started_at = now
        weight = self.rollout.steps[0]
        figures = {
            "steps": list(self.rollout.steps),
            "hold_s": self.rollout.hold_s,
            "min_requests": self.rollout.min_requests,
        }
        reason = (
            f"Started the rollout at step 0 with challenger weight {weight:g} of plan "
            f"{_format_steps(self.rollout.steps)}, holding each step {self.rollout.hold_s:g} s "
            f"and at least {self.rollout.min_requests} challenger requests."
        )
        return self._decide("start", "start", weight, reason, figures)

    def evaluate(self, stats: dict) -> Decision:
        """Judge one stats window and return the decision for it.

        Parameters
        ----------
        stats
            One window of :meth:`RouterControl.stats`.

        Returns
        -------
        Decision
            The decision, already applied to the controller's state. After a
            promotion or rollback, the same final decision each time.

        Raises
        ------
        RuntimeError
            If :meth:`start` has not been called.
        ValueError
            If ``stats`` lacks a key the controller reads.
        """
        if self._final is not None:
            return self._final
        if self._step is None:
            raise RuntimeError("call CanaryController.start() before evaluate()")

        step = self._step
        weight = self.rollout.steps[step]
        held_s = self._clock() - self._step_started_at
        window_weight = _lookup(stats, "weights", "challenger")
        requests = _count(stats, "versions", "challenger", "requests")
        checks = evaluate_guards(self.guards, stats)
        figures = {
            "window": _lookup(stats, "window"),
            "window_challenger_weight": window_weight,
            "held_s": held_s,
            "hold_s": self.rollout.hold_s,
            "challenger_requests": requests,
            "min_requests": self.rollout.min_requests,
            "versions": {
                "champion": _lookup(stats, "versions", "champion", "version"),
                "challenger": _lookup(stats, "versions", "challenger", "version"),
            },
            "guards": [check.to_dict() for check in checks],
        }
        at = f"at step {step} (challenger weight {weight:g})"

        if not isinstance(window_weight, (int, float)) or not math.isclose(window_weight, weight, abs_tol=1e-9):
            reason = (
                f"Held {at}: the stats window {figures['window']} has challenger weight {window_weight!r}, "
                f"not {weight:g}, so the router has not applied this step yet."
            )
            return self._decide("hold", "stale_window", weight, reason, figures)

        if requests < self.rollout.min_requests:
            reason = (
                f"Held {at}: the challenger has {requests} of the {self.rollout.min_requests} "
                f"requests needed before guards are judged."
            )
            return self._decide("hold", "min_requests", weight, reason, figures)

        failed = [check for check in checks if check.passed is False]
        if failed:
            breaches = "; ".join(f"{check.name} {check.detail}" for check in failed)
            reason = f"Rolled back {at} after {held_s:g} s on {requests} challenger requests: {breaches}."
            return self._finish("rollback", "guard_breach", 0.0, reason, figures)

        if held_s < self.rollout.hold_s:
            reason = f"Held {at}: {held_s:g} s of {self.rollout.hold_s:g} s have passed, and no guard fails."
            return self._decide("hold", "hold_time", weight, reason, figures)

        missing = [check for check in checks if check.passed is None and self._needs_data(check.name, weight)]
        if missing:
            lacking = "; ".join(f"{check.name}: {check.detail}" for check in missing)
            reason = f"Held {at}: guards that must be measured before moving on lack data ({lacking})."
            return self._decide("hold", "missing_data", weight, reason, figures)

        summary = "; ".join(f"{check.name} {check.detail}" for check in checks)
        if step == len(self.rollout.steps) - 1:
            reason = f"Promoted the challenger {at} after {held_s:g} s on {requests} requests: {summary}."
            return self._finish("promote", "guards_passed", 1.0, reason, figures)

        self._step = step + 1
        self._step_started_at = self._clock()
        next_weight = self.rollout.steps[step + 1]
        reason = (
            f"Advanced from weight {weight:g} to {next_weight:g} after {held_s:g} s on "
            f"{requests} challenger requests: {summary}."
        )
        return self._decide("advance", "guards_passed", next_weight, reason, figures)

    def interrupt(self, cause: Literal["stop_event", "max_duration"], detail: str = "") -> Decision:
        """End the rollout with a rollback because it was stopped, not because of a guard.

        An unwatched traffic split would keep the challenger serving with no
        guard checked, so a stopped rollout rolls back rather than leaving the
        weights where they are. The decision's ``interrupted`` is True.

        Parameters
        ----------
        cause
            ``stop_event`` or ``max_duration``.
        detail
            A clause appended to the reason, such as the configured limit.

        Raises
        ------
        RuntimeError
            If :meth:`start` has not been called.
        ValueError
            If ``cause`` is not one of the two above.
        """
        if cause not in INTERRUPT_CAUSES:
            raise ValueError(f"cause must be one of {sorted(INTERRUPT_CAUSES)}, got {cause!r}")
        if self._final is not None:
            return self._final
        if self._step is None:
            raise RuntimeError("call CanaryController.start() before interrupt()")
        step = self._step
        weight = self.rollout.steps[step]
        elapsed_s = self.elapsed_s
        stopped_by = "a stop request" if cause == "stop_event" else "the rollout's time limit"
        suffix = f" ({detail})" if detail else ""
        reason = (
            f"Rolled back at step {step} (challenger weight {weight:g}) because the rollout was stopped by "
            f"{stopped_by} after {elapsed_s:g} s{suffix}, before the challenger was fully judged."
        )
        figures = {"elapsed_s": elapsed_s, "held_s": self._clock() - self._step_started_at}
        return self._finish("rollback", cause, 0.0, reason, figures)

    def _needs_data(self, guard: str, weight: float) -> bool:
        if guard in ("error_rate", "p95_latency_ms"):
            return True
        # The champion gets no traffic at weight 1.0, so its p95 cannot be known there.
        return guard == "p95_latency_ratio" and weight < 1.0

    def _decide(
        self, action: Action, cause: str, weight: float, reason: str, figures: dict[str, Any]
    ) -> Decision:
        figures = {"step": self.step, **figures}
        return Decision(action, self.step, weight, reason, figures, self._wall_clock(), cause)

    def _finish(
        self, action: Action, cause: str, weight: float, reason: str, figures: dict[str, Any]
    ) -> Decision:
        self._final = self._decide(action, cause, weight, reason, figures)
        return self._final


def _format_steps(steps: list[float]) -> str:
    return " -> ".join(f"{step:g}" for step in steps)


def _append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it before returning."""
    line = json.dumps(record, allow_nan=False, sort_keys=True) + "\n"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _apply(router: RouterControl, decision: Decision) -> None:
    if decision.action in ("start", "advance"):
        router.set_weights(decision.challenger_weight)
    elif decision.action == "promote":
        router.promote()
    elif decision.action == "rollback":
        router.rollback()


def run_rollout(
    router: RouterControl,
    controller: CanaryController,
    *,
    poll_s: float = 1.0,
    decision_log: Path | None = None,
    sleep: Callable[[float], object] | None = None,
    on_decision: Callable[[Decision], object] | None = None,
    max_duration_s: float | None = None,
    stop: threading.Event | None = None,
) -> Decision:
    """Drive a router through a canary rollout until it promotes or rolls back.

    Sets the first step's weight, then polls ``router.stats()`` every
    ``poll_s`` seconds and applies each decision: ``advance`` calls
    ``set_weights``, ``promote`` calls ``promote`` and ``rollback`` calls
    ``rollback``. A decision is recorded after the router has applied it.

    When ``stop`` is set or ``max_duration_s`` has passed, checked before each
    poll, the rollout rolls back (see :meth:`CanaryController.interrupt`) and
    returns a decision whose ``interrupted`` is True.

    Every decision goes to ``on_decision``. Consecutive holds with the same
    cause at the same step are recorded once: the first is logged at INFO and
    written to ``decision_log``, and the repeats are logged at DEBUG only.
    Every other decision is logged at INFO and written.

    Parameters
    ----------
    router
        The router to drive.
    controller
        A controller that has not started yet.
    poll_s
        Seconds between polls of the router's stats.
    decision_log
        JSON-lines file that each recorded decision is appended to, one line
        each, flushed and fsynced before the rollout goes on. A crash can cut
        only the line being written. Its folder is created if missing.
    sleep
        Waits the given seconds between polls. Default: ``stop.wait`` when
        ``stop`` is given, so a stop request ends the wait, else ``time.sleep``.
    on_decision
        Called with every decision, repeated holds included.
    max_duration_s
        Seconds on the controller's clock after which the rollout rolls back
        unless it has ended. None means no limit.
    stop
        Set it from another thread to end the rollout with a rollback.

    Returns
    -------
    Decision
        The final decision: ``promote`` or ``rollback``.

    Raises
    ------
    ValueError
        If ``poll_s`` or ``max_duration_s`` is not positive.
    RuntimeError
        If the controller has already started.

    Notes
    -----
    An exception from the router (stats, set_weights, promote, rollback)
    propagates unchanged, and the router keeps whatever weights it had.
    """
    if not poll_s > 0:
        raise ValueError(f"poll_s must be > 0 seconds, got {poll_s!r}")
    if max_duration_s is not None and not max_duration_s > 0:
        raise ValueError(f"max_duration_s must be > 0 seconds or None for no limit, got {max_duration_s!r}")
    if sleep is None:
        sleep = stop.wait if stop is not None else time.sleep
    if decision_log is not None:
        decision_log = Path(decision_log)
        decision_log.parent.mkdir(parents=True, exist_ok=True)

    previous: Decision | None = None

    def apply_and_record(decision: Decision) -> None:
        nonlocal previous
        _apply(router, decision)
        repeat = (
            previous is not None
            and decision.action == "hold"
            and (previous.action, previous.cause, previous.step) == ("hold", decision.cause, decision.step)
        )
        previous = decision
        if repeat:
            logger.debug("canary hold (repeat): %s", decision.reason)
        else:
            logger.info("canary %s: %s figures=%s", decision.action, decision.reason, decision.figures)
            if decision_log is not None:
                _append_line(decision_log, decision.to_dict())
        if on_decision is not None:
            on_decision(decision)

    decision = controller.start()
    try:
        apply_and_record(decision)
        while True:
            sleep(poll_s)
            if stop is not None and stop.is_set():
                decision = controller.interrupt("stop_event")
            elif max_duration_s is not None and controller.elapsed_s >= max_duration_s:
                decision = controller.interrupt("max_duration", f"max_duration_s {max_duration_s:g}")
            else:
                decision = controller.evaluate(router.stats())
            apply_and_record(decision)
            if decision.final:
                return decision
    except Exception as exc:
        logger.error(
            "canary rollout failed at step %d (latest decision %s, challenger weight %g); "
            "the router keeps the weights it had: %r",
            decision.step,
            decision.action,
            decision.challenger_weight,
            exc,
        )
        raise
