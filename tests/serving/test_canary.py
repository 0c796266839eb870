"""Canary controller: guard figures by hand, scripted rollouts, the decision log, interrupts."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from al_ray.config import GuardsConfig, RolloutConfig
from al_ray.serving.canary import (
    CanaryController,
    Decision,
    GuardCheck,
    RouterControl,
    evaluate_guards,
    run_rollout,
)

# Unix time at fake clock 0, so timestamps differ from the monotonic seconds.
EPOCH = 1_700_000_000.0

PLAN = RolloutConfig(steps=[0.05, 0.25, 0.5, 1.0], hold_s=60.0, min_requests=100)
GUARDS = GuardsConfig(
    max_error_rate=0.01,
    max_p95_latency_ms=100.0,
    max_p95_latency_ratio=2.0,
    min_agreement=0.8,
    min_accuracy_delta=-0.02,
    min_feedback_labels=50,
)


def version_stats(
    requests: int = 0,
    errors: int = 0,
    p95: float | None = 20.0,
    compared: int = 0,
    agreed: int = 0,
    labeled: int = 0,
    correct: int = 0,
    name: str = "v2",
) -> dict[str, Any]:
    return {
        "version": name,
        "requests": requests,
        "errors": errors,
        "rows": requests,
        "latency_ms": {"p50": None if p95 is None else p95 / 2, "p95": p95, "count": requests - errors},
        "agreement": {"compared": compared, "agreed": agreed},
        "feedback": {"labeled": labeled, "correct": correct},
    }


def window(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None = None,
    challenger_weight: float = 0.05,
    number: int = 1,
) -> dict[str, Any]:
    if champion is None:
        champion = version_stats(requests=1000, name="v1")
    return {
        "window": number,
        "window_started": EPOCH,
        "weights": {"champion": 1 - challenger_weight, "challenger": challenger_weight},
        "versions": {"champion": champion, "challenger": challenger},
    }


def healthy(weight: float, poll: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return stats of a challenger that keeps every guard. The champion gets no traffic at weight 1."""
    champion_requests = 0 if weight == 1.0 else 1000
    champion = version_stats(champion_requests, p95=None if weight == 1.0 else 20.0, name="v1")
    challenger = version_stats(150, errors=1, p95=25.0, compared=150, agreed=140, name="v2")
    return champion, challenger


class FakeClock:
    """Test double for both clocks: seconds that advance only through ``sleep`` or by setting ``now``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ScriptedRouter:
    """Test double of RouterControl, not a router: each poll's counts come from a script.

    ``script(challenger_weight, poll_index)`` returns (champion, challenger)
    version stats. The double adds the weights it was set to and the window number.
    """

    def __init__(self, script: Callable[[float, int], tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.script = script
        self.weight = 0.0
        self.window = 0
        self.polls = 0
        self.calls: list[tuple[Any, ...]] = []

    def stats(self) -> dict[str, Any]:
        champion, challenger = self.script(self.weight, self.polls)
        self.polls += 1
        return window(challenger, champion, self.weight, self.window)

    def set_weights(self, challenger: float) -> None:
        self.calls.append(("set_weights", challenger))
        self.weight = challenger
        self.window += 1

    def promote(self) -> None:
        self.calls.append(("promote",))
        self.weight = 1.0
        self.window += 1

    def rollback(self) -> None:
        self.calls.append(("rollback",))
        self.weight = 0.0
        self.window += 1


def controller(
    clock: FakeClock, rollout: RolloutConfig = PLAN, guards: GuardsConfig = GUARDS
) -> CanaryController:
    return CanaryController(rollout, guards, clock=clock, wall_clock=clock.wall)


def started(clock: FakeClock, rollout: RolloutConfig = PLAN, guards: GuardsConfig = GUARDS) -> CanaryController:
    canary = controller(clock, rollout, guards)
    canary.start()
    return canary


def by_name(checks: list[GuardCheck]) -> dict[str, GuardCheck]:
    return {check.name: check for check in checks}


def summary(decisions: list[Decision]) -> list[tuple[str, int, float, float]]:
    return [(d.action, d.step, d.challenger_weight, d.timestamp) for d in decisions]


# Guard figures, computed by hand.


def test_guard_error_rate_breach() -> None:
    checks = by_name(evaluate_guards(GUARDS, window(version_stats(200, errors=3))))
    error_rate = checks["error_rate"]
    assert error_rate.passed is False
    assert error_rate.observed == pytest.approx(0.015)  # 3 / 200
    assert error_rate.limit == 0.01
    assert error_rate.detail == "3 errors in 200 requests = 0.015 > 0.01"


def test_guard_error_rate_at_limit() -> None:
    checks = by_name(evaluate_guards(GUARDS, window(version_stats(200, errors=2))))
    assert checks["error_rate"].passed is True
    assert checks["error_rate"].observed == 0.01  # 2 / 200


def test_guard_agreement_values() -> None:
    guards = GUARDS.model_copy(update={"min_agreement": 0.95})
    at_limit = by_name(evaluate_guards(guards, window(version_stats(180, compared=180, agreed=171))))
    below = by_name(evaluate_guards(guards, window(version_stats(180, compared=180, agreed=170))))
    assert at_limit["agreement"].observed == 0.95  # 171 / 180
    assert at_limit["agreement"].passed is True
    assert below["agreement"].observed == pytest.approx(0.94444, abs=1e-5)  # 170 / 180
    assert below["agreement"].passed is False
    assert below["agreement"].detail == "170 of 180 rows agree = 0.9444 < 0.95"


def test_guard_agreement_without_comparisons() -> None:
    checks = by_name(evaluate_guards(GUARDS, window(version_stats(180))))
    assert checks["agreement"].passed is None
    assert checks["agreement"].observed is None


def test_guard_latency_values() -> None:
    champion = version_stats(1000, p95=20.0, name="v1")
    slow = by_name(evaluate_guards(GUARDS, window(version_stats(200, p95=50.0), champion)))
    at_ratio = by_name(evaluate_guards(GUARDS, window(version_stats(200, p95=40.0), champion)))
    too_slow = by_name(evaluate_guards(GUARDS, window(version_stats(200, p95=120.0), champion)))
    assert slow["p95_latency_ratio"].observed == 2.5  # 50 / 20
    assert slow["p95_latency_ratio"].passed is False
    assert slow["p95_latency_ms"].passed is True
    assert at_ratio["p95_latency_ratio"].observed == 2.0  # 40 / 20
    assert at_ratio["p95_latency_ratio"].passed is True
    assert too_slow["p95_latency_ms"].passed is False
    assert too_slow["p95_latency_ms"].detail == "challenger p95 120 ms > 100 ms"


def test_guard_latency_ratio_unknown_champion() -> None:
    champion = version_stats(0, p95=None, name="v1")
    checks = by_name(evaluate_guards(GUARDS, window(version_stats(200, p95=40.0), champion)))
    assert checks["p95_latency_ratio"].passed is None
    assert checks["p95_latency_ms"].passed is True


def test_guard_accuracy_delta_values() -> None:
    champion = version_stats(1000, labeled=50, correct=46, name="v1")  # 0.92
    at_limit = by_name(evaluate_guards(GUARDS, window(version_stats(200, labeled=50, correct=45), champion)))
    below = by_name(evaluate_guards(GUARDS, window(version_stats(200, labeled=50, correct=44), champion)))
    # 0.90 - 0.92 is -0.020000000000000018 in floats, and must still pass the limit -0.02.
    assert at_limit["accuracy_delta"].observed == pytest.approx(-0.02)
    assert at_limit["accuracy_delta"].passed is True
    assert below["accuracy_delta"].observed == pytest.approx(-0.04)  # 0.88 - 0.92
    assert below["accuracy_delta"].passed is False


def test_guard_accuracy_below_min_labels() -> None:
    champion = version_stats(1000, labeled=500, correct=500, name="v1")
    checks = by_name(evaluate_guards(GUARDS, window(version_stats(200, labeled=49, correct=0), champion)))
    accuracy = checks["accuracy_delta"]
    assert accuracy.passed is None
    assert accuracy.observed is None
    assert accuracy.detail == "labeled feedback rows: challenger 49, champion 500; each needs 50"


def test_guard_disabled_left_out() -> None:
    guards = GuardsConfig(max_p95_latency_ms=None, max_p95_latency_ratio=None, min_agreement=None, min_accuracy_delta=None)
    checks = evaluate_guards(guards, window(version_stats(200)))
    assert [check.name for check in checks] == ["error_rate"]


def test_guard_no_requests_unjudged() -> None:
    checks = by_name(evaluate_guards(GUARDS, window(version_stats(0, p95=None))))
    assert checks["error_rate"].passed is None
    assert checks["p95_latency_ms"].passed is None


def test_guard_missing_key_message() -> None:
    stats = window(version_stats(200))
    del stats["versions"]["challenger"]["errors"]
    with pytest.raises(ValueError, match=r"router stats are missing the key 'versions\.challenger\.errors'"):
        evaluate_guards(GUARDS, stats)


def test_guard_negative_count_message() -> None:
    stats = window(version_stats(200))
    stats["versions"]["challenger"]["requests"] = -1
    with pytest.raises(ValueError, match=r"invalid router stats: versions\.challenger\.requests must be an integer >= 0, got -1"):
        evaluate_guards(GUARDS, stats)


# The controller alone.


def test_controller_start_decision() -> None:
    clock = FakeClock()
    clock.now = 5.0
    decision = controller(clock).start()
    assert decision.action == "start"
    assert decision.step == 0
    assert decision.challenger_weight == 0.05
    assert decision.timestamp == EPOCH + 5.0
    assert decision.reason == (
        "Started the rollout at step 0 with challenger weight 0.05 of plan 0.05 -> 0.25 -> 0.5 -> 1, "
        "holding each step 60 s and at least 100 challenger requests."
    )


def test_controller_min_requests_holds() -> None:
    clock = FakeClock()
    canary = started(clock)
    clock.now = 300.0
    # Half the requests failed, but 99 requests are too few to judge any guard.
    decision = canary.evaluate(window(version_stats(99, errors=50)))
    assert decision.action == "hold"
    assert decision.cause == "min_requests"
    assert decision.reason == (
        "Held at step 0 (challenger weight 0.05): the challenger has 99 of the 100 requests needed "
        "before guards are judged."
    )
    assert canary.evaluate(window(version_stats(100))).action == "advance"


def test_controller_hold_time_holds() -> None:
    clock = FakeClock()
    canary = started(clock)
    clock.now = 59.0
    decision = canary.evaluate(window(version_stats(500)))
    assert decision.action == "hold"
    assert decision.cause == "hold_time"
    assert decision.figures["held_s"] == 59.0
    clock.now = 60.0
    assert canary.evaluate(window(version_stats(500))).action == "advance"


def test_controller_stale_window_holds() -> None:
    clock = FakeClock()
    canary = started(clock)
    clock.now = 120.0
    decision = canary.evaluate(window(version_stats(500), challenger_weight=0.0, number=7))
    assert decision.action == "hold"
    assert decision.cause == "stale_window"
    assert "stats window 7 has challenger weight 0.0, not 0.05" in decision.reason


def test_controller_latency_needs_data() -> None:
    clock = FakeClock()
    canary = started(clock)
    clock.now = 60.0
    no_champion_p95 = version_stats(1000, p95=None, name="v1")
    decision = canary.evaluate(window(version_stats(500), no_champion_p95))
    assert decision.action == "hold"
    assert decision.cause == "missing_data"
    assert "p95_latency_ratio" in decision.reason


def test_controller_accuracy_ignored_below_min_labels() -> None:
    clock = FakeClock()
    canary = started(clock)
    clock.now = 60.0
    champion = version_stats(1000, labeled=500, correct=500, name="v1")
    few_wrong = version_stats(500, labeled=49, correct=0)
    decision = canary.evaluate(window(few_wrong, champion))
    assert decision.action == "advance"
    assert by_name_from_figures(decision)["accuracy_delta"]["passed"] is None


def test_controller_accuracy_counts_at_min_labels() -> None:
    clock = FakeClock()
    canary = started(clock)
    clock.now = 60.0
    champion = version_stats(1000, labeled=500, correct=500, name="v1")
    enough_wrong = version_stats(500, labeled=50, correct=0)
    decision = canary.evaluate(window(enough_wrong, champion))
    assert decision.action == "rollback"
    assert "accuracy_delta accuracy 0 - 1 = -1 < -0.02 on 50 and 500 labeled rows" in decision.reason


def by_name_from_figures(decision: Decision) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in decision.figures["guards"]}


def test_controller_final_decision_repeats() -> None:
    clock = FakeClock()
    canary = started(clock)
    clock.now = 10.0
    rollback = canary.evaluate(window(version_stats(200, errors=3)))
    assert rollback.action == "rollback"
    assert canary.finished
    assert canary.challenger_weight == 0.0
    clock.now = 500.0
    assert canary.evaluate(window(version_stats(200))) is rollback
    assert canary.interrupt("stop_event") is rollback


def test_controller_evaluate_before_start() -> None:
    with pytest.raises(RuntimeError, match=r"call CanaryController\.start\(\) before evaluate\(\)"):
        controller(FakeClock()).evaluate(window(version_stats(200)))


def test_controller_start_twice() -> None:
    canary = started(FakeClock())
    with pytest.raises(RuntimeError, match="has already started; create a new CanaryController"):
        canary.start()


def test_controller_single_step_promotes() -> None:
    clock = FakeClock()
    canary = started(clock, RolloutConfig(steps=[1.0], hold_s=0.0, min_requests=1))
    no_champion = version_stats(0, p95=None, name="v1")
    decision = canary.evaluate(window(version_stats(5), no_champion, challenger_weight=1.0))
    assert decision.action == "promote"
    assert decision.challenger_weight == 1.0


# Rollouts driven through the router protocol.


def test_rollout_healthy_promotes() -> None:
    clock = FakeClock()
    router = ScriptedRouter(healthy)
    decisions: list[Decision] = []
    final = run_rollout(
        router, controller(clock), poll_s=30.0, sleep=clock.sleep, on_decision=decisions.append
    )
    assert summary(decisions) == [
        ("start", 0, 0.05, EPOCH),
        ("hold", 0, 0.05, EPOCH + 30),
        ("advance", 1, 0.25, EPOCH + 60),
        ("hold", 1, 0.25, EPOCH + 90),
        ("advance", 2, 0.5, EPOCH + 120),
        ("hold", 2, 0.5, EPOCH + 150),
        ("advance", 3, 1.0, EPOCH + 180),
        ("hold", 3, 1.0, EPOCH + 210),
        ("promote", 3, 1.0, EPOCH + 240),
    ]
    assert router.calls == [
        ("set_weights", 0.05),
        ("set_weights", 0.25),
        ("set_weights", 0.5),
        ("set_weights", 1.0),
        ("promote",),
    ]
    assert final is decisions[-1]
    assert final.cause == "guards_passed"
    assert not final.interrupted
    assert final.reason.startswith("Promoted the challenger at step 3 (challenger weight 1) after 60 s on 150 requests")


def test_rollout_breach_rolls_back() -> None:
    def breach_at_half(weight: float, poll: int) -> tuple[dict[str, Any], dict[str, Any]]:
        if weight == 0.5:
            return version_stats(1000, name="v1"), version_stats(200, errors=3, p95=25.0)
        return healthy(weight, poll)

    clock = FakeClock()
    router = ScriptedRouter(breach_at_half)
    decisions: list[Decision] = []
    final = run_rollout(
        router, controller(clock), poll_s=30.0, sleep=clock.sleep, on_decision=decisions.append
    )
    # The first poll at weight 0.5 comes 30 s into a 60 s hold, and rolls back at once.
    assert summary(decisions)[-2:] == [
        ("advance", 2, 0.5, EPOCH + 120),
        ("rollback", 2, 0.0, EPOCH + 150),
    ]
    assert router.calls[-2:] == [("set_weights", 0.5), ("rollback",)]
    assert final.cause == "guard_breach"
    assert not final.interrupted
    assert final.reason == (
        "Rolled back at step 2 (challenger weight 0.5) after 30 s on 200 challenger requests: "
        "error_rate 3 errors in 200 requests = 0.015 > 0.01."
    )
    assert by_name_from_figures(final)["error_rate"]["observed"] == pytest.approx(0.015)


def test_rollout_log_lines(tmp_path: Path) -> None:
    clock = FakeClock()
    log = tmp_path / "canary" / "decisions.jsonl"
    decisions: list[Decision] = []
    # Polls every 10 s against a 60 s hold, so each step holds five times in a row.
    run_rollout(
        ScriptedRouter(healthy),
        controller(clock),
        poll_s=10.0,
        decision_log=log,
        sleep=clock.sleep,
        on_decision=decisions.append,
    )
    text = log.read_text(encoding="utf-8")
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert len(decisions) == 1 + 4 * 6  # start, then five holds and a move per step
    assert [record["action"] for record in records] == [
        "start", "hold", "advance", "hold", "advance", "hold", "advance", "hold", "promote"
    ]
    assert records[1]["timestamp"] == EPOCH + 10
    assert records[-1]["challenger_weight"] == 1.0
    assert records[-1]["interrupted"] is False
    assert set(records[-1]) == {
        "action", "step", "challenger_weight", "reason", "figures", "timestamp", "cause", "interrupted"
    }
    assert records[-1]["figures"]["versions"] == {"champion": "v1", "challenger": "v2"}


def test_rollout_log_appends(tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text('{"action": "earlier"}\n', encoding="utf-8")
    clock = FakeClock()
    run_rollout(ScriptedRouter(healthy), controller(clock), poll_s=60.0, decision_log=log, sleep=clock.sleep)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"action": "earlier"}'
    assert len(lines) == 1 + 5  # start, three advances, promote


def test_rollout_stop_event_rolls_back() -> None:
    clock = FakeClock()
    router = ScriptedRouter(healthy)
    stop = threading.Event()
    decisions: list[Decision] = []

    def stop_after_first_advance(decision: Decision) -> None:
        decisions.append(decision)
        if decision.action == "advance":
            stop.set()

    final = run_rollout(
        router,
        controller(clock),
        poll_s=30.0,
        sleep=clock.sleep,
        on_decision=stop_after_first_advance,
        stop=stop,
    )
    assert summary(decisions)[-2:] == [("advance", 1, 0.25, EPOCH + 60), ("rollback", 1, 0.0, EPOCH + 90)]
    assert router.calls == [("set_weights", 0.05), ("set_weights", 0.25), ("rollback",)]
    assert router.polls == 2
    assert final.interrupted
    assert final.cause == "stop_event"
    assert final.reason == (
        "Rolled back at step 1 (challenger weight 0.25) because the rollout was stopped by a stop request "
        "after 90 s, before the challenger was fully judged."
    )


def test_rollout_default_sleep_is_stop_wait() -> None:
    stop = threading.Event()
    stop.set()
    router = ScriptedRouter(healthy)
    # With stop already set, stop.wait returns at once, so a 1 h poll does not block.
    final = run_rollout(router, CanaryController(PLAN, GUARDS), poll_s=3600.0, stop=stop)
    assert final.cause == "stop_event"
    assert router.calls == [("set_weights", 0.05), ("rollback",)]


def test_rollout_max_duration_rolls_back() -> None:
    def idle(weight: float, poll: int) -> tuple[dict[str, Any], dict[str, Any]]:
        return version_stats(1000, name="v1"), version_stats(3)

    clock = FakeClock()
    router = ScriptedRouter(idle)
    final = run_rollout(router, controller(clock), poll_s=30.0, sleep=clock.sleep, max_duration_s=100.0)
    assert final.action == "rollback"
    assert final.cause == "max_duration"
    assert final.interrupted
    assert final.timestamp == EPOCH + 120  # the first poll time at or past 100 s
    assert router.polls == 3
    assert "stopped by the rollout's time limit after 120 s (max_duration_s 100)" in final.reason


def test_rollout_router_error_propagates(caplog: pytest.LogCaptureFixture) -> None:
    def unreachable(weight: float, poll: int) -> tuple[dict[str, Any], dict[str, Any]]:
        raise ConnectionError("router at 127.0.0.1:8000 refused the connection")

    clock = FakeClock()
    router = ScriptedRouter(unreachable)
    with (
        caplog.at_level("ERROR", logger="al_ray.serving.canary"),
        pytest.raises(ConnectionError, match="refused the connection"),
    ):
        run_rollout(router, controller(clock), poll_s=30.0, sleep=clock.sleep)
    assert router.calls == [("set_weights", 0.05)]
    assert "failed at step 0 (latest decision start, challenger weight 0.05)" in caplog.text


def test_rollout_rejects_bad_poll() -> None:
    with pytest.raises(ValueError, match=r"poll_s must be > 0 seconds, got 0"):
        run_rollout(ScriptedRouter(healthy), controller(FakeClock()), poll_s=0)


def test_rollout_rejects_bad_duration() -> None:
    with pytest.raises(ValueError, match=r"max_duration_s must be > 0 seconds or None for no limit, got -1"):
        run_rollout(ScriptedRouter(healthy), controller(FakeClock()), max_duration_s=-1)


def test_router_double_matches_protocol() -> None:
    router: RouterControl = ScriptedRouter(healthy)
    assert set(router.stats()) == {"window", "window_started", "weights", "versions"}


# One invariant over random plans and random traffic.

poll_stats = st.tuples(
    st.integers(0, 300),  # challenger requests
    st.integers(0, 5),  # challenger errors
    st.sampled_from([None, 10.0, 30.0, 80.0]),  # challenger p95 ms
    st.integers(0, 20),  # rows that disagree with the champion, of 100 compared
)


@st.composite
def plans(draw: st.DrawFn) -> RolloutConfig:
    inner = draw(st.lists(st.sampled_from([0.01, 0.05, 0.1, 0.25, 0.5, 0.75]), unique=True, max_size=4))
    return RolloutConfig(steps=sorted(inner) + [1.0], hold_s=draw(st.sampled_from([0.0, 20.0, 60.0])), min_requests=50)


@settings(max_examples=150, deadline=None)
@given(plan=plans(), polls=st.lists(poll_stats, min_size=1, max_size=30), poll_s=st.sampled_from([5.0, 30.0]))
def test_rollout_weights_invariant(plan: RolloutConfig, polls: list[tuple[Any, ...]], poll_s: float) -> None:
    def scripted(weight: float, poll: int) -> tuple[dict[str, Any], dict[str, Any]]:
        requests, errors, p95, disagreed = polls[min(poll, len(polls) - 1)]
        champion = version_stats(0 if weight == 1.0 else 500, p95=None if weight == 1.0 else 20.0, name="v1")
        challenger = version_stats(requests, min(errors, requests), p95, compared=100, agreed=100 - disagreed)
        return champion, challenger

    clock = FakeClock()
    decisions: list[Decision] = []
    run_rollout(
        ScriptedRouter(scripted),
        controller(clock, plan),
        poll_s=poll_s,
        sleep=clock.sleep,
        on_decision=decisions.append,
        max_duration_s=len(polls) * poll_s + 1000.0,
    )
    final = decisions[-1]
    moves = [d.challenger_weight for d in decisions if d.action in ("start", "advance")]
    assert moves == plan.steps[: len(moves)]
    assert {d.action for d in decisions[1:-1]} <= {"hold", "advance"}
    assert sum(d.final for d in decisions) == 1
    if final.action == "promote":
        assert final.challenger_weight == 1.0
        assert moves[-1] == 1.0
    else:
        assert final.action == "rollback"
        assert final.challenger_weight == 0.0
        failed = [check for check in final.figures.get("guards", []) if check["passed"] is False]
        assert final.interrupted or failed
