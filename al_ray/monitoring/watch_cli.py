"""The ``al-ray watch`` command."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_watch_parser", "format_round", "format_window"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_watch_parser(commands) -> None:
    """Add ``al-ray watch CONFIG [--output DIR] [--max-windows N] [--once]``."""
    watch = commands.add_parser(
        "watch",
        help="watch live traffic for drift, uncertainty and staleness, and start rounds when a trigger fires",
        description=(
            "Read live windows (served uncertain rows, or a dataset replayed as live traffic), test each for "
            "drift against the live model's training data, evaluate monitoring.triggers and start rounds "
            "locally or as Ray jobs. Prints one line per window (its drift figures, the policies that fired "
            "and the action taken) and one per round attempt. `al-ray -v watch CONFIG` also logs each "
            "policy's figures and thresholds, the drift reports written and the rounds' own progress. "
            "Stop with Ctrl-C; a restart continues where it stopped and never starts a second round for a "
            "trigger it already acted on."
        ),
    )
    watch.add_argument("config", type=Path, help="YAML config with a monitoring section, e.g. configs/elec2_watch.yaml")
    watch.add_argument("--output", type=Path, help="output folder of the run to watch; default: runs/<name>/<strategy>")
    watch.add_argument(
        "--max-windows", type=_positive_int, metavar="N", help="stop after reading N windows (default: run until stopped)"
    )
    watch.add_argument(
        "--once", action="store_true", help="read the windows available now, then stop instead of waiting for more"
    )
    watch.set_defaults(handler=command_watch)


def format_window(report) -> str:
    """Return one line for a :class:`~al_ray.monitoring.watch.WindowReport`."""
    if report.status != "checked":
        return f"window {report.window_id}: skipped ({report.status}): {report.message}"
    figures = report.figures
    drifted = ",".join(report.drifted_features) or "none"
    parts = [
        f"live round {report.live_round}",
        f"drifted share {figures.get('drift_share', 0.0):.2f} [{drifted}]",
        f"score {figures.get('drift_score', 0.0):.3g}",
        f"uncertainty mean {figures.get('uncertainty_mean', 0.0):.3f}",
    ]
    if report.accuracy is not None:
        parts.append(f"accuracy {report.accuracy:.3f}")
    for decision in report.decisions:
        parts.append(f"{decision.policy} {'fired' if decision.fired else 'not fired'} ({decision.reason})")
    parts.append(f"action: {report.action}")
    return f"window {report.window_id}: " + "; ".join(parts)


def format_round(event) -> str:
    """Return one line for a :class:`~al_ray.monitoring.watch.RoundEvent`."""
    cause = f"{', '.join(event.policies)} on {event.window_id}" if event.policies else event.window_id
    if event.status == "completed":
        return f"round {event.target_round} completed ({cause})"
    if event.status == "ended":
        return f"round {event.target_round} did not run: the loop stopped with {event.detail!r} ({cause})"
    if event.status == "failed":
        return (
            f"round {event.target_round} failed (attempt {event.attempt}), retrying in {event.retry_in_s:.0f} s: "
            f"{event.detail}"
        )
    return f"round {event.target_round} abandoned after {event.attempt} attempts: {event.detail}"


def command_watch(args: argparse.Namespace) -> int:
    from al_ray.config import load_config
    from al_ray.monitoring.watch import Watcher

    config = load_config(args.config)
    with Watcher(
        config,
        output_dir=args.output,
        config_path=args.config,
        on_window=lambda report: print(format_window(report), flush=True),
        on_round=lambda event: print(format_round(event), flush=True),
    ) as watcher:
        if watcher.recorder.metrics_url is not None:
            print(f"serving Prometheus metrics at {watcher.recorder.metrics_url}", flush=True)
        summary = watcher.run(max_windows=args.max_windows, once=args.once)
        output_dir = watcher.output_dir
    print(
        f"windows: {summary.windows} ({summary.checked} checked, {summary.empty} empty, "
        f"{summary.malformed} malformed)"
    )
    print(
        f"rounds: {summary.rounds_requested} requested, {summary.rounds_succeeded} completed, "
        f"{summary.rounds_ended} ended without a round, {summary.round_failures} failed attempts, "
        f"{summary.rounds_abandoned} abandoned"
    )
    print(f"run folder: {output_dir}")
    return 0
