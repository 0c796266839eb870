"""Replay the elec2 electricity stream as live traffic through the watcher and score it.

The first window of elec2, in file order, trains the first model. The watcher
then reads the stream window by window, tests each window for drift against
its reference, and starts a local round when the drift policy fires. A
round's labels come from the simulated oracle (the dataset's ground truth),
and its pool is the rows replayed so far that are unlabeled. Each variant in
:data:`VARIANTS` is one watch configuration; every variant replays the stream
twice: in file order, and in a seeded shuffled order, which has no drift by
construction and so counts false alarms.

Measured per variant:

- rounds the watcher started;
- detection delay per known shift: rows from the shift to the end of the
  first window that contains rows from the shift on and on which the policy
  fired;
- false alarms: fired windows among the stable windows, which are the
  windows before the first known shift, and fired windows of the shuffled
  replay;
- accuracy after each shift, prequential: the watcher scores every window
  with the live model before any round trains on it. The live model is
  compared with the stale one, the version that was live when the shift
  arrived, never retrained, on the windows from the shift up to the next
  shift (or at most ``--horizon-windows``).

Known shifts, in :data:`KNOWN_SHIFTS`, come from the data: at row 17,424 the
Victoria columns stop being the constants that Weka's ReplaceMissingValues
filter filled in, and a hindsight scan (:func:`scan_shifts`, rerun with
``--scan``) finds that row and row 27,888.

The model is a logistic regression without the ``date`` column, which only
grows along the stream; scikit-multiflow's copy of elec2 has no date column
either.

Run:  python -m benchmarks.elec2_watch [--variants labeled,recent,recent-cooldown] [--smoke]
Writes benchmarks/results/elec2_watch.csv (one row per replayed window) and
benchmarks/results/elec2_watch_shifts.csv (one row per variant and known
shift), and prints markdown tables.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

from al_ray.config import RunConfig, parse_config
from al_ray.data import LabeledData, load_shipped
from al_ray.loop.model_io import load_model
from al_ray.loop.outputs import write_csv_atomic
from benchmarks._args import choice_list, positive_int

__all__ = [
    "KNOWN_SHIFTS",
    "SHIFT_COLUMNS",
    "VARIANTS",
    "WINDOW_COLUMNS",
    "LogisticRegressionWithoutColumns",
    "Variant",
    "main",
    "scan_shifts",
]

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"

KNOWN_SHIFTS: dict[int, str] = {
    17_424: "Victoria columns start varying",
    27_888: "hindsight scan peak",
}
"""Row of each known shift, in file order, and what it is."""

# Four weeks of half-hourly rows: every window contains each weekday equally often,
# so the day-of-week shares of two windows are equal by construction.
WINDOW_ROWS = 1344
SECONDS_PER_ROW = 1800.0

WINDOW_COLUMNS = (
    "variant", "replay", "window", "first_row", "end_row", "live_round", "drift_share", "drift_score",
    "drifted_features", "fired", "action", "accuracy_live", "accuracy_initial", "shift_in_window",
)  # fmt: skip
SHIFT_COLUMNS = (
    "variant", "shift_row", "shift", "detected_at_row", "delay_rows", "stale_round", "windows_compared",
    "accuracy_retrained", "accuracy_stale", "rounds_in_horizon",
)  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One watch configuration of the benchmark."""

    name: str
    reference: str
    """``monitoring.watch.reference``."""
    min_drifted_share: float
    cooldown_windows: int = 0
    window_rows: int = WINDOW_ROWS
    batch_size: int = 200
    max_windows: int | None = None
    tracking: bool = True


VARIANTS: dict[str, Variant] = {
    "labeled": Variant("labeled", "labeled", 0.5),
    "recent": Variant("recent", "recent_traffic", 0.5),
    "recent-cooldown": Variant("recent-cooldown", "recent_traffic", 0.5, cooldown_windows=3),
}


class LogisticRegressionWithoutColumns(ClassifierMixin, BaseEstimator):
    """Logistic regression that ignores the feature columns at ``drop_columns``.

    Parameters
    ----------
    drop_columns : sequence of int
        Column positions left out of fitting and prediction.
    C, max_iter
        As in ``sklearn.linear_model.LogisticRegression``.
    """

    def __init__(self, drop_columns: Sequence[int] = (0,), C: float = 1.0, max_iter: int = 1000) -> None:
        self.drop_columns = drop_columns
        self.C = C
        self.max_iter = max_iter

    def _kept(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features)
        keep = np.setdiff1d(np.arange(features.shape[1]), np.asarray(self.drop_columns, dtype=np.int64))
        return features[:, keep]

    def fit(self, features: np.ndarray, labels: np.ndarray) -> LogisticRegressionWithoutColumns:
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(self._kept(features), labels)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(self._kept(features))

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(features), axis=1)]


def scan_shifts(data: LabeledData, *, window_rows: int = WINDOW_ROWS, quantile: float = 0.95) -> list[int]:
    """Find shifts in hindsight: peaks of a two-window Kolmogorov-Smirnov scan.

    At every day boundary ``t`` the scan takes the mean KS statistic between
    the ``window_rows`` rows before ``t`` and the ``window_rows`` rows from
    ``t`` on, over the five market columns (NSW and Victoria price and demand,
    and transfer). Peaks above the scan's ``quantile`` that lie at least two
    windows apart are the shifts. The scan reads the whole stream, which the
    watcher never reads at once, so it dates shifts for scoring and is no detector.
    """
    from scipy.stats import ks_2samp

    market = ("nswprice", "nswdemand", "vicprice", "vicdemand", "transfer")
    columns = [data.feature_names.index(name) for name in market]
    features = data.features.astype(np.float64)
    rows_per_day = 48
    points = np.arange(window_rows, len(data) - window_rows + 1, rows_per_day)
    statistic = np.array(
        [
            np.mean(
                [ks_2samp(features[t - window_rows : t, j], features[t : t + window_rows, j]).statistic for j in columns]
            )
            for t in points
        ]
    )
    threshold = np.quantile(statistic, quantile)
    picked: list[int] = []
    for index in np.argsort(-statistic):
        if statistic[index] < threshold:
            break
        if all(abs(int(points[index]) - other) >= 2 * window_rows for other in picked):
            picked.append(int(points[index]))
    return sorted(picked)


def run_config(variant: Variant, order: str, output: Path, seed: int) -> RunConfig:
    """Return the run config of one replay."""
    raw = {
        "name": f"elec2-watch-{variant.name}-{order}",
        "seed": seed,
        "output": str(output),
        "data": {"dataset": "elec2", "test_size": 0.1},
        "model": {
            "estimator": f"{__name__}.LogisticRegressionWithoutColumns",
            "params": {"drop_columns": [0]},
            "standardize": True,
            "fit_on": "driver",
        },
        "strategy": {"name": "margin"},
        "loop": {"batch_size": variant.batch_size},
        "scoring": {"mode": "local"},
        "tracking": {"enabled": variant.tracking, "register_models": False, "log_model": False},
        "monitoring": {
            "drift": {"exclude_features": ["date"], "window": {"size": variant.window_rows}},
            "triggers": {
                "drift": {"min_drifted_share": variant.min_drifted_share},
                "cooldown_s": variant.cooldown_windows * variant.window_rows * SECONDS_PER_ROW,
            },
            "watch": {
                "source": {"kind": "replay", "order": order, "seconds_per_row": SECONDS_PER_ROW},
                "reference": variant.reference,
                "reports": "none",
            },
        },
    }
    return parse_config(raw, source="elec2 watch benchmark")


@dataclass(frozen=True)
class WindowRow:
    """One replayed window as the benchmark scores it."""

    variant: str
    replay: str
    window: str
    first_row: int
    end_row: int
    live_round: int
    drift_share: float
    drift_score: float
    drifted_features: tuple[str, ...]
    fired: bool
    action: str
    accuracy_live: float
    accuracy_initial: float
    shift_in_window: int | None


@dataclass
class ReplayResult:
    order: str
    output: Path
    rows: list[WindowRow]
    rounds_started: int
    rounds_completed: int


def run_replay(variant: Variant, order: str, output: Path, data: LabeledData, seed: int) -> ReplayResult:
    """Run the watcher over one replay and score its windows."""
    from al_ray.monitoring.watch import Watcher

    shutil.rmtree(output, ignore_errors=True)
    with Watcher(run_config(variant, order, output, seed), output_dir=output) as watcher:
        summary = watcher.run(max_windows=variant.max_windows)
        positions = watcher.source.positions
    initial = load_model(output / "models" / "round_0000.pkl")
    rows = []
    for report in summary.reports:
        if report.status != "checked":
            continue
        first = report.end_position - report.n_rows
        replayed = positions[first : report.end_position]
        inside = [shift for shift in KNOWN_SHIFTS if first <= shift < report.end_position] if order == "file" else []
        rows.append(
            WindowRow(
                variant=variant.name,
                replay=order,
                window=report.window_id,
                first_row=first,
                end_row=report.end_position,
                live_round=int(report.live_round),
                drift_share=report.figures["drift_share"],
                drift_score=report.figures["drift_score"],
                drifted_features=report.drifted_features,
                fired=any(decision.fired for decision in report.decisions),
                action=report.action,
                accuracy_live=float(report.accuracy),
                accuracy_initial=_accuracy(initial, data, replayed),
                shift_in_window=inside[0] if inside else None,
            )
        )
    return ReplayResult(order, output, rows, summary.rounds_requested, summary.rounds_succeeded)


def _accuracy(model, data: LabeledData, positions: np.ndarray) -> float:
    return float(np.mean(model.predict(data.features[positions]) == data.labels[positions]))


@dataclass(frozen=True)
class ShiftScore:
    variant: str
    shift_row: int
    shift: str
    detected_at_row: int | None
    delay_rows: int | None
    stale_round: int
    windows_compared: int
    accuracy_retrained: float
    accuracy_stale: float
    rounds_in_horizon: int


def score_shifts(result: ReplayResult, data: LabeledData, horizon_windows: int | None) -> list[ShiftScore]:
    """Score detection delay and prequential accuracy after each known shift of a file-order replay."""
    scores = []
    shifts = sorted(KNOWN_SHIFTS)
    for number, shift in enumerate(shifts):
        after = [row for row in result.rows if row.end_row > shift]
        if not after:
            continue
        next_shift = shifts[number + 1] if number + 1 < len(shifts) else None
        horizon = [after[0]] + [row for row in after[1:] if next_shift is None or row.first_row < next_shift]
        if horizon_windows is not None:
            horizon = horizon[:horizon_windows]
        alarm = next((row for row in after if row.fired), None)
        stale_round = after[0].live_round
        stale = load_model(result.output / "models" / f"round_{stale_round:04d}.pkl")
        stale_accuracy = [_accuracy(stale, data, np.arange(row.first_row, row.end_row)) for row in horizon]
        scores.append(
            ShiftScore(
                variant=after[0].variant,
                shift_row=shift,
                shift=KNOWN_SHIFTS[shift],
                detected_at_row=None if alarm is None else alarm.end_row,
                delay_rows=None if alarm is None else alarm.end_row - shift,
                stale_round=stale_round,
                windows_compared=len(horizon),
                accuracy_retrained=float(np.mean([row.accuracy_live for row in horizon])),
                accuracy_stale=float(np.mean(stale_accuracy)),
                rounds_in_horizon=sum(row.action == "round requested" for row in horizon),
            )
        )
    return scores


def render_variant(
    variant: Variant, replays: dict[str, ReplayResult], scores: list[ShiftScore], seconds: float
) -> str:
    """Return one variant's tables in markdown."""
    cooldown = f", cooldown {variant.cooldown_windows} windows" if variant.cooldown_windows else ""
    heading = (
        f"**{variant.name}**: reference {variant.reference}, drift policy min_drifted_share "
        f"{variant.min_drifted_share:g}{cooldown}; {seconds:.0f} s for both replays."
    )
    lines = [
        heading,
        "",
        "| replay | windows | fired | rounds started | rounds completed | false alarms | accuracy live | accuracy initial model |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    first_shift = min(KNOWN_SHIFTS)
    for order, result in replays.items():
        fired = sum(row.fired for row in result.rows)
        if order == "file":
            stable = [row for row in result.rows if row.end_row <= first_shift]
            false_alarms = f"{sum(row.fired for row in stable)} of {len(stable)} stable"
        else:
            false_alarms = f"{fired} of {len(result.rows)}"
        lines.append(
            f"| {order} order | {len(result.rows)} | {fired} | {result.rounds_started} | {result.rounds_completed} | "
            f"{false_alarms} | {_mean(row.accuracy_live for row in result.rows):.3f} | "
            f"{_mean(row.accuracy_initial for row in result.rows):.3f} |"
        )
    lines += [
        "",
        "| shift row | shift | detected at row | delay rows | stale round | windows | accuracy retrained | accuracy stale | rounds |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for score in scores:
        detected = "-" if score.detected_at_row is None else f"{score.detected_at_row:,}"
        delay = "not detected" if score.delay_rows is None else f"{score.delay_rows:,}"
        lines.append(
            f"| {score.shift_row:,} | {score.shift} | {detected} | {delay} | {score.stale_round} | "
            f"{score.windows_compared} | {score.accuracy_retrained:.3f} | {score.accuracy_stale:.3f} | "
            f"{score.rounds_in_horizon} |"
        )
    return "\n".join(lines)


def _mean(values) -> float:
    values = list(values)
    return float(np.mean(values)) if values else float("nan")


def _window_csv(row: WindowRow) -> tuple:
    return (
        row.variant, row.replay, row.window, row.first_row, row.end_row, row.live_round, f"{row.drift_share:.4f}",
        f"{row.drift_score:.4f}", " ".join(row.drifted_features), int(row.fired), row.action,
        f"{row.accuracy_live:.4f}", f"{row.accuracy_initial:.4f}",
        "" if row.shift_in_window is None else row.shift_in_window,
    )  # fmt: skip


def _shift_csv(score: ShiftScore) -> tuple:
    return (
        score.variant, score.shift_row, score.shift, "" if score.detected_at_row is None else score.detected_at_row,
        "" if score.delay_rows is None else score.delay_rows, score.stale_round, score.windows_compared,
        f"{score.accuracy_retrained:.4f}", f"{score.accuracy_stale:.4f}", score.rounds_in_horizon,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--variants",
        type=choice_list(tuple(VARIANTS), "variant"),
        default=list(VARIANTS),
        help=f"comma-separated watch configurations to replay (default: {','.join(VARIANTS)})",
    )
    parser.add_argument("--batch-size", type=positive_int, default=200, help="labels queried per round")
    parser.add_argument(
        "--horizon-windows", type=positive_int, help="compare accuracy on at most this many windows after a shift"
    )
    parser.add_argument("--seed", type=int, default=0, help="root seed of every replay")
    parser.add_argument("--smoke", action="store_true", help="three windows of 96 rows per replay, in seconds")
    parser.add_argument("--scan", action="store_true", help="rerun the hindsight shift scan and print its rows")
    parser.add_argument("--out", type=Path, default=RESULTS / "elec2_watch.csv", help="per-window CSV")
    parser.add_argument("--work", type=Path, help="folder of the replays' runs; default: a new temporary folder")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be 0 or more, got {args.seed}")

    data = load_shipped("elec2")
    if args.scan:
        print(f"hindsight scan: shifts at rows {', '.join(f'{row:,}' for row in scan_shifts(data))}")
    work = args.work or Path(tempfile.mkdtemp(prefix="elec2_watch_"))
    window_rows: list[WindowRow] = []
    shift_scores: list[ShiftScore] = []
    window_size, batch_size = (96, 20) if args.smoke else (WINDOW_ROWS, args.batch_size)
    sections = [
        (
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
            f"Windows of {window_size} rows, {batch_size} labels per round, margin sampling, seed {args.seed}."
        )
    ]
    for name in args.variants:
        variant = replace(VARIANTS[name], batch_size=args.batch_size)
        if args.smoke:
            variant = replace(variant, window_rows=96, batch_size=20, max_windows=3, cooldown_windows=0, tracking=False)
        started = time.perf_counter()
        replays = {
            order: run_replay(variant, order, work / variant.name / order, data, args.seed)
            for order in ("file", "shuffled")
        }
        scores = score_shifts(replays["file"], data, args.horizon_windows)
        sections.append(render_variant(variant, replays, scores, time.perf_counter() - started))
        for result in replays.values():
            window_rows += result.rows
        shift_scores += scores

    write_csv_atomic(args.out, WINDOW_COLUMNS, [_window_csv(row) for row in window_rows])
    shifts_path = args.out.with_name(f"{args.out.stem}_shifts.csv")
    write_csv_atomic(shifts_path, SHIFT_COLUMNS, [_shift_csv(score) for score in shift_scores])
    print("\n\n".join(sections))
    print(f"\nwrote {args.out} and {shifts_path}; the replays' runs are in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
