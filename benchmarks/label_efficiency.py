"""Label efficiency of every al_ray strategy against random and two peers, on four shipped datasets.

For each dataset and seed, al_ray's seeded split (``al_ray.data.make_split``)
gives one initial labeled set, one pool and one test set. Every library then
runs every strategy it has on that same split, with the same estimator
(``al_ray.models.build_estimator``), the same batch size and the same number
of rounds (see :mod:`benchmarks.label_efficiency_runners`):

- al_ray: each strategy's ``query`` on the inputs that the loop's scorer
  computes (``al_ray.scoring.inputs.build_batch``), in this process, without
  Ray, the label store or MLflow around it. Committee strategies get 5
  bagged copies of the estimator, with the bootstrap seeds of al_ray's
  committee trainer.
- modAL: ``ActiveLearner.query`` with its uncertainty functions, and
  ``Committee.query`` with its disagreement functions on the same 5 members.
- scikit-activeml: ``UncertaintySampling``, ``RandomSampling``,
  ``QueryByCommittee`` (on the same 5 members), ``Badge`` and ``CoreSet``.

A strategy that a peer lacks is recorded as "not in <peer>".

Metrics per dataset, library, strategy and seed:

- the test accuracy after each round against the labels used;
- AULC, the trapezoid area under that curve divided by the label range;
- macro-F1 after the last round;
- the labels needed to reach 95% of the full-pool accuracy;
- the labels needed to reach the final accuracy of al_ray's random sampling
  on the same split, as a share of random's labels.

"Labels needed" is the first measured point at or above the target, so it
is an upper bound that moves in steps of one batch.

Run:  python -m benchmarks.label_efficiency [--datasets mnist_test,letter_recognition] [--seeds 10] [--jobs 2]
Writes, under --out-dir (default benchmarks/results): label_efficiency.csv (one
row per run), label_efficiency_summary.csv, label_efficiency_<dataset>.png and
label_efficiency.md, and replaces the generated label-efficiency section of
--results-md (default: RESULTS.md in the folder above --out-dir).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import multiprocessing
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from al_ray.data import load_shipped
from al_ray.loop.outputs import write_csv_atomic
from benchmarks._args import choice_list, positive_int
from benchmarks._report import machine_line, replace_section, write_text_atomic
from benchmarks.label_efficiency_report import (
    FULL_POOL_FRACTION,
    SUMMARY_COLUMNS,
    area_under_curve,
    cell,
    join,
    labels_to_reach,
    plot_dataset,
    render_markdown,
    summarize,
)
from benchmarks.label_efficiency_runners import (
    LIBRARIES,
    STRATEGIES,
    Curve,
    DatasetSetup,
    Task,
    build_task,
    missing_status,
    run_library,
)

__all__ = [
    "CSV_COLUMNS",
    "DATASETS",
    "LIBRARIES",
    "STRATEGIES",
    "SUMMARY_COLUMNS",
    "area_under_curve",
    "labels_to_reach",
    "main",
    "missing_status",
    "run_case",
    "run_seed",
]

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
SECTION = "label_efficiency"
SECTION_HEADING = "## Label efficiency: every strategy against random, al_ray and peers"
RUN_RECORD = "label_efficiency_run.json"
"""Command, wall time, jobs and machine of the run that wrote the CSV, for --report-only."""
PACKAGES = ("numpy", "scipy", "scikit-learn", "modAL-python", "scikit-activeml")

DATASETS: dict[str, DatasetSetup] = {
    # C=0.05 and tol=1e-3 keep a 784-feature fit near 0.1 s at 520 labels on one
    # core and reach about the same full-pool accuracy as C=1, which fits 10x slower.
    "mnist_test": DatasetSetup(
        name="mnist_test",
        initial_labeled=20,
        rounds=10,
        batch=50,
        pool_size=5000,
        test_size=2000,
        estimator_params={"C": 0.05, "tol": 1e-3, "max_iter": 100},
        standardize=False,
    ),
    # Two labels per letter to start.
    "letter_recognition": DatasetSetup(
        name="letter_recognition",
        initial_labeled=52,
        rounds=10,
        batch=100,
        pool_size=10000,
        test_size=4000,
        estimator_params={"C": 1.0, "max_iter": 500},
        standardize=True,
    ),
    # The features are amounts and codes on very different scales, so they are standardized.
    "credit_default": DatasetSetup(
        name="credit_default",
        initial_labeled=20,
        rounds=10,
        batch=50,
        pool_size=8000,
        test_size=4000,
        estimator_params={"C": 1.0, "max_iter": 500},
        standardize=True,
    ),
    # Rows are already L2-normalized hash counts, so they are not standardized.
    # Their feature values are small, and C=10 fits them better (full-pool
    # accuracy 0.96 at C=1, 0.98 at C=10, on one split).
    "sms_spam": DatasetSetup(
        name="sms_spam",
        initial_labeled=20,
        rounds=10,
        batch=30,
        pool_size=3000,
        test_size=1500,
        estimator_params={"C": 10.0, "max_iter": 500},
        standardize=False,
    ),
}
"""Default setup per shipped dataset; command-line options override the sizes."""

DEFAULT_BADGE_PEER_SEEDS = 3
"""Seeds on which scikit-activeml's Badge runs by default.

It builds the dense ``(n_pool, n_classes * n_features)`` float64 gradient
matrix every round, 314 MB on the 5,000-row MNIST pool, and reads all of it
for every pick. One MNIST run took 106 s against 1.9 s for al_ray's badge
(one core, other work on the machine), so 10 seeds would add about 18 minutes.
"""

CSV_COLUMNS: tuple[str, ...] = (
    "dataset", "library", "strategy", "seed", "status", "seconds",
    "labels", "accuracies", "final_labels", "final_accuracy", "final_macro_f1", "aulc",
    "full_pool_accuracy", "target_accuracy", "labels_to_target",
    "random_final_accuracy", "labels_to_random_final", "fraction_of_random_labels",
)  # fmt: skip
"""Columns of the per-run CSV. ``labels`` and ``accuracies`` are ``;``-separated curves.

Empty cells mean "no value": the run did not happen (see ``status``) or never
reached the target.
"""


@contextmanager
def _quiet_fits() -> Iterator[None]:
    # Every library fits with the same max_iter, so an early stop is part of the
    # shared model. The warnings would only repeat that thousands of times.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Tiny smoke runs label fewer rows than twice the class count, which scikit-learn flags.
        warnings.filterwarnings("ignore", message="The number of unique classes is greater than 50%")
        yield


def run_case(task: Task, library: str, strategy_name: str) -> tuple[str, Curve | None, float]:
    """Run one library and strategy on ``task``; return status, curve and seconds.

    A peer that fails is recorded as ``"failed: <error>"`` and logged, so one
    broken peer does not end the benchmark. al_ray's own errors propagate.
    """
    missing = missing_status(library, strategy_name)
    if missing is not None:
        return missing, None, 0.0
    started = time.perf_counter()
    try:
        with _quiet_fits():
            curve = run_library(task, library, strategy_name)
    except Exception as exc:
        if library == "al_ray":
            raise
        logger.warning("%s %s failed on %s seed %d: %r", library, strategy_name, task.dataset, task.seed, exc)
        return f"failed: {type(exc).__name__}: {exc}", None, time.perf_counter() - started
    return "ok", curve, time.perf_counter() - started


def full_pool_accuracy(task: Task) -> float:
    """Fit the estimator on the initial set and the whole pool; return its test accuracy."""
    model = clone(task.estimator)
    with _quiet_fits():
        model.fit(
            np.vstack([task.initial_features, task.pool_features]),
            np.concatenate([task.initial_labels, task.pool_labels]),
        )
    return float(np.mean(model.predict(task.test_features) == task.test_labels))


def _curve_cells(curve: Curve, target: float, random_curve: Curve | None) -> dict[str, object]:
    cells: dict[str, object] = {
        "labels": join(curve.labels),
        "accuracies": join(curve.accuracies),
        "final_labels": int(curve.labels[-1]),
        "final_accuracy": round(float(curve.accuracies[-1]), 6),
        "final_macro_f1": round(curve.final_macro_f1, 6),
        "aulc": round(area_under_curve(curve.labels, curve.accuracies), 6),
        "labels_to_target": cell(labels_to_reach(curve.labels, curve.accuracies, target)),
    }
    if random_curve is not None:
        random_final = float(random_curve.accuracies[-1])
        needed = labels_to_reach(curve.labels, curve.accuracies, random_final)
        cells.update(
            random_final_accuracy=round(random_final, 6),
            labels_to_random_final=cell(needed),
            fraction_of_random_labels=cell(
                None if needed is None else needed / float(random_curve.labels[-1]), 4
            ),
        )
    return cells


def _skip_reason(
    library: str, strategy: str, seed: int, peer_seeds: int | None, badge_peer_seeds: int
) -> str | None:
    """Return why a run is left out to save time on this seed, or None when it runs."""
    if library == "al_ray":
        return None
    if peer_seeds is not None and seed >= peer_seeds:
        return f"skipped: peers run on seeds below {peer_seeds} only"
    if (library, strategy) == ("skactiveml", "badge") and seed >= badge_peer_seeds:
        return f"skipped: runs on seeds below {badge_peer_seeds} only"
    return None


def run_seed(
    setup: DatasetSetup,
    seed: int,
    libraries: Sequence[str],
    strategies: Sequence[str],
    badge_peer_seeds: int = DEFAULT_BADGE_PEER_SEEDS,
    peer_seeds: int | None = None,
) -> list[dict[str, object]]:
    """Run every library and strategy on one seed's split; return one CSV row per run.

    Peers run on seeds below ``peer_seeds`` only (all seeds when None), and
    scikit-activeml's Badge on seeds below ``badge_peer_seeds`` only.
    """
    task = build_task(setup, seed)
    full_accuracy = full_pool_accuracy(task)
    target = FULL_POOL_FRACTION * full_accuracy

    results: dict[tuple[str, str], tuple[str, Curve | None, float]] = {}
    for strategy in strategies:
        for library in libraries:
            skipped = _skip_reason(library, strategy, seed, peer_seeds, badge_peer_seeds)
            if skipped is None:
                results[(library, strategy)] = run_case(task, library, strategy)
            else:
                results[(library, strategy)] = (skipped, None, 0.0)
    reference = results.get(("al_ray", "random"))
    random_curve = reference[1] if reference is not None else None

    rows = []
    for (library, strategy), (status, curve, seconds) in results.items():
        row: dict[str, object] = {column: "" for column in CSV_COLUMNS}
        row.update(dataset=setup.name, library=library, strategy=strategy, seed=seed, status=status)
        row.update(full_pool_accuracy=round(full_accuracy, 6), target_accuracy=round(target, 6))
        if curve is not None:
            row.update(seconds=round(seconds, 3), **_curve_cells(curve, target, random_curve))
        rows.append(row)
        logger.info(
            "%s seed %d %s %s: %s, final accuracy %s, %s s",
            setup.name,
            seed,
            library,
            strategy,
            status,
            row["final_accuracy"],
            row["seconds"],
        )
    return rows


@dataclass(frozen=True)
class RunOptions:
    """What every (dataset, seed) job runs, and on which seeds the peers run."""

    libraries: tuple[str, ...]
    strategies: tuple[str, ...]
    badge_peer_seeds: int = DEFAULT_BADGE_PEER_SEEDS
    peer_seeds: int | None = None
    blas_threads: int = 1


def _run_job(setup: DatasetSetup, seed: int, options: RunOptions) -> list[dict[str, object]]:
    from threadpoolctl import threadpool_limits

    # One BLAS thread makes these small fits 3 to 5 times faster than the
    # default on 2 cores, and fixes the summation order, so results do not
    # depend on --jobs.
    with threadpool_limits(limits=options.blas_threads):
        return run_seed(
            setup, seed, options.libraries, options.strategies, options.badge_peer_seeds, options.peer_seeds
        )


def run_all(
    setups: Sequence[DatasetSetup],
    seeds: int,
    options: RunOptions,
    *,
    jobs: int = 1,
    on_rows: Callable[[list[dict[str, object]]], None] | None = None,
) -> list[dict[str, object]]:
    """Run every (dataset, seed) job in ``jobs`` processes; return the CSV rows in job order.

    ``on_rows`` receives the rows so far after each job, so a run stopped
    early keeps what it finished.
    """
    arguments = [(setup, seed) for setup in setups for seed in range(seeds)]
    started = time.perf_counter()
    rows: list[dict[str, object]] = []

    def finished(setup: DatasetSetup, seed: int, output: list[dict[str, object]]) -> None:
        rows.extend(output)
        if on_rows is not None:
            on_rows(rows)
        print(f"{setup.name} seed {seed} done, {time.perf_counter() - started:.0f} s", flush=True)

    if jobs == 1:
        for setup, seed in arguments:
            finished(setup, seed, _run_job(setup, seed, options))
        return rows
    # spawn, not fork: a forked child would inherit the parent's BLAS thread state.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as executor:
        futures = [executor.submit(_run_job, setup, seed, options) for setup, seed in arguments]
        for (setup, seed), future in zip(arguments, futures):
            finished(setup, seed, future.result())
    return rows


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser; size options left unset keep each dataset's default."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.label_efficiency", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--datasets",
        type=choice_list(list(DATASETS), "dataset"),
        default=list(DATASETS),
        help=f"comma-separated shipped datasets, from {', '.join(DATASETS)}",
    )
    parser.add_argument(
        "--strategies",
        type=choice_list(STRATEGIES, "strategy"),
        default=list(STRATEGIES),
        help="comma-separated al_ray strategies (default: all of `al-ray strategies`)",
    )
    parser.add_argument(
        "--libraries",
        type=choice_list(LIBRARIES, "library"),
        default=list(LIBRARIES),
        help=f"comma-separated libraries, from {', '.join(LIBRARIES)}; al_ray random is the reference",
    )
    parser.add_argument("--seeds", type=positive_int, default=10, help="seeds 0 .. N-1, one split each")
    parser.add_argument("--rounds", type=positive_int, help="query rounds per run (default: per dataset)")
    parser.add_argument("--batch", type=positive_int, help="rows queried per round (default: per dataset)")
    parser.add_argument("--initial", type=positive_int, help="initially labeled rows (default: per dataset)")
    parser.add_argument("--pool-size", type=positive_int, help="maximum pool rows (default: per dataset)")
    parser.add_argument("--test-size", type=positive_int, help="test rows (default: per dataset)")
    parser.add_argument(
        "--jobs", type=positive_int, default=1, help="processes that run (dataset, seed) jobs side by side"
    )
    parser.add_argument(
        "--peer-seeds",
        type=positive_int,
        help="run the peers on seeds 0 .. N-1 only (default: every seed); al_ray runs on every seed",
    )
    parser.add_argument(
        "--badge-peer-seeds",
        type=positive_int,
        default=DEFAULT_BADGE_PEER_SEEDS,
        help="run scikit-activeml's Badge on seeds 0 .. N-1 only; it costs about 100 s a run on MNIST",
    )
    parser.add_argument(
        "--out-dir", type=Path, default=RESULTS, help="folder for the CSV, PNG and markdown files"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="skip the runs: rebuild the summary, plots and markdown from the CSV and run record in --out-dir",
    )
    parser.add_argument(
        "--results-md",
        type=Path,
        help="markdown file whose generated label-efficiency section is replaced "
        "(default: RESULTS.md in the folder above --out-dir)",
    )
    return parser


def _overridden(setup: DatasetSetup, args: argparse.Namespace) -> DatasetSetup:
    changes = {
        field: value
        for field, value in (
            ("rounds", args.rounds),
            ("batch", args.batch),
            ("initial_labeled", args.initial),
            ("pool_size", args.pool_size),
            ("test_size", args.test_size),
        )
        if value is not None
    }
    return replace(setup, **changes)


def majority_accuracy(name: str) -> float:
    """Return the share of the most common class in a shipped dataset: the accuracy of always guessing it."""
    labels = load_shipped(name).labels
    return float(np.bincount(labels).max() / labels.size)


def _write_runs(out_dir: Path, rows: list[dict[str, object]]) -> None:
    write_csv_atomic(
        out_dir / "label_efficiency.csv", CSV_COLUMNS, [[row[c] for c in CSV_COLUMNS] for row in rows]
    )


def _write_outputs(
    out_dir: Path,
    rows: list[dict[str, object]],
    summary: list[dict[str, object]],
    setups: Sequence[DatasetSetup],
) -> None:
    _write_runs(out_dir, rows)
    write_csv_atomic(
        out_dir / "label_efficiency_summary.csv",
        SUMMARY_COLUMNS,
        [[row[c] for c in SUMMARY_COLUMNS] for row in summary],
    )
    for setup in setups:
        plot_dataset(out_dir / f"label_efficiency_{setup.name}.png", setup.name, summary)


def _read_run(out_dir: Path) -> tuple[list[dict[str, object]], dict[str, Any]]:
    """Read the per-run CSV and the run record that an earlier run wrote to ``out_dir``."""
    csv_path, record_path = out_dir / "label_efficiency.csv", out_dir / RUN_RECORD
    if not csv_path.is_file() or not record_path.is_file():
        raise SystemExit(
            f"--report-only needs {csv_path} and {record_path} from an earlier run; run without --report-only first"
        )
    with open(csv_path, newline="", encoding="utf-8") as stream:
        rows: list[dict[str, object]] = list(csv.DictReader(stream))
    return rows, json.loads(record_path.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Run the benchmark, write its files and RESULTS.md section, print the markdown and return the summary rows."""
    args = build_parser().parse_args(argv)
    setups = [_overridden(DATASETS[name], args) for name in args.datasets]
    out_dir: Path = args.out_dir
    results_md: Path = args.results_md if args.results_md is not None else out_dir.parent / "RESULTS.md"

    if args.report_only:
        rows, record = _read_run(out_dir)
        # The tables describe the run that wrote the CSV, so its own options set the sizes and seeds.
        args = build_parser().parse_args([*record["argv"], "--out-dir", str(out_dir)])
        setups = [_overridden(DATASETS[name], args) for name in args.datasets]
    else:
        started = time.perf_counter()
        options = RunOptions(
            libraries=tuple(args.libraries),
            strategies=tuple(args.strategies),
            badge_peer_seeds=args.badge_peer_seeds,
            peer_seeds=args.peer_seeds,
        )
        rows = run_all(
            setups, args.seeds, options, jobs=args.jobs, on_rows=lambda done: _write_runs(out_dir, done)
        )
        cli_args = list(argv if argv is not None else sys.argv[1:])
        record = {
            "command": " ".join(["python -m benchmarks.label_efficiency", *cli_args]),
            "argv": cli_args,
            "wall_s": round(time.perf_counter() - started, 1),
            "jobs": args.jobs,
            "machine": machine_line(PACKAGES),
        }
        write_text_atomic(out_dir / RUN_RECORD, json.dumps(record, indent=2) + "\n")

    summary = summarize(rows)
    _write_outputs(out_dir, rows, summary, setups)
    notes = [
        (
            f"Total wall time of this run: {float(str(record['wall_s'])):.0f} s with {record['jobs']} job(s) "
            "of 1 BLAS thread each."
        )
    ]
    majorities = {setup.name: majority_accuracy(setup.name) for setup in setups}
    markdown = render_markdown(
        str(record["command"]), str(record["machine"]), setups, majorities, args.seeds, summary, rows, notes
    )
    write_text_atomic(out_dir / "label_efficiency.md", f"{SECTION_HEADING}\n\n{markdown}")
    replace_section(SECTION, markdown, results_md, heading=SECTION_HEADING)
    print(markdown)
    return summary


if __name__ == "__main__":
    main()
