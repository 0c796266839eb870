"""Measure the time and peak memory of the batch-diverse selectors as the candidate set grows.

For each selector (BADGE, core-set, cluster-margin) and candidate count, the
script builds seeded synthetic inputs: float32 features or embeddings, as a
pool stores them, and float64 margins or BADGE gradient factors computed from
random softmax probabilities. Building the inputs is not measured. The script
then times the selector call alone (wall and CPU time of the fastest of
``--repeats`` calls) and runs it once more under ``tracemalloc`` to measure
the peak memory it allocates above its inputs. It checks that every call
returns the same distinct positions.

``tracemalloc`` records numpy's and Python's allocations only, not BLAS
workspaces or scikit-learn's C++ buffers, so the peaks are lower bounds.

Run:  python -m benchmarks.selection_scaling [--sizes 10000,100000] [--selectors badge,coreset]
Writes benchmarks/results/selection_scaling.csv and prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import sklearn

from al_ray.loop.outputs import write_csv_atomic
from al_ray.strategies.diversity import (
    badge_select,
    cluster_margin_select,
    greedy_k_center,
)
from al_ray.strategies.expected_change import gradient_embedding_factors
from al_ray.strategies.measures import margin
from benchmarks._args import choice_list, int_list, non_negative_int, positive_int

__all__ = ["CSV_COLUMNS", "SELECTORS", "Case", "build_cases", "main", "measure_case"]

RESULTS = Path(__file__).resolve().parent / "results"
SELECTORS = ("badge", "coreset", "cluster-margin")
CSV_COLUMNS = (
    "selector",
    "candidates",
    "classes",
    "dims",
    "labeled_rows",
    "batch",
    "selected",
    "distinct",
    "repeats",
    "best_s",
    "cpu_s",
    "candidates_per_s",
    "input_mib",
    "peak_mib",
    "peak_bytes_per_candidate",
    "float64_row_bytes",
    "dense_gradient_mib",
    "dense_over_peak",
)
MIB = 2**20
FLOAT64_BYTES = 8

# Logits with standard deviation 3 spread the softmax rows from near one-hot
# to near uniform, so margins and gradient factors are not all alike.
LOGIT_SCALE = 3.0


@dataclasses.dataclass(frozen=True)
class Case:
    """One measured selector call: the selector and the shape of its inputs."""

    selector: str
    candidates: int
    classes: int
    dims: int
    batch: int
    labeled_rows: int = 0

    @property
    def float64_row_bytes(self) -> int:
        """Bytes of one candidate's input columns in float64, the unit the selectors compute in."""
        columns = {"badge": self.classes + self.dims, "coreset": self.dims}
        return FLOAT64_BYTES * columns.get(self.selector, self.dims + 1)

    @property
    def dense_gradient_bytes(self) -> int | None:
        """Bytes of the ``(m, classes * dims)`` float64 gradient embeddings BADGE never forms."""
        if self.selector != "badge":
            return None
        return FLOAT64_BYTES * self.candidates * self.classes * self.dims


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def prepare_call(case: Case, seed: int) -> tuple[Callable[[], np.ndarray], int]:
    """Build the seeded inputs of ``case`` and return the selector call and the inputs' bytes.

    The same ``seed`` and shape give the same inputs for every selector, so
    the selectors at one size see one pool.
    """
    rng = np.random.default_rng([seed, case.candidates, case.classes, case.dims])
    probabilities = _softmax(LOGIT_SCALE * rng.standard_normal((case.candidates, case.classes)))
    features = rng.standard_normal((case.candidates, case.dims), dtype=np.float32)

    if case.selector == "badge":
        factors, _ = gradient_embedding_factors(probabilities)
        inputs: tuple[np.ndarray, ...] = (factors, features)

        def call() -> np.ndarray:
            return badge_select(factors, features, case.batch, seed)

    elif case.selector == "coreset":
        labeled = rng.standard_normal((case.labeled_rows, case.dims), dtype=np.float32)
        inputs = (features, labeled)

        def call() -> np.ndarray:
            return greedy_k_center(features, labeled, case.batch)

    elif case.selector == "cluster-margin":
        utilities = margin(probabilities)
        inputs = (utilities, features)

        def call() -> np.ndarray:
            return cluster_margin_select(utilities, features, case.batch, seed)

    else:
        raise ValueError(f"unknown selector {case.selector!r}. Expected one of {', '.join(SELECTORS)}")
    return call, sum(array.nbytes for array in inputs)


def measure_case(case: Case, repeats: int, seed: int) -> dict[str, object]:
    """Time the selector call of ``case``, measure its peak memory and return one CSV row.

    Raises:
        SystemExit: When a call returns repeated positions, the wrong number
            of them, or a different selection from the timed calls.
    """
    call, input_bytes = prepare_call(case, seed)

    # CPU time of all the process's threads, next to wall time: on a shared
    # machine, waiting for a core inflates the wall time but not the CPU time.
    durations: list[tuple[float, float]] = []
    positions = np.empty(0, dtype=np.int64)
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        started_cpu = time.process_time()
        positions = call()
        durations.append((time.perf_counter() - started, time.process_time() - started_cpu))

    # A separate run, because tracing every allocation slows the call down.
    gc.collect()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        traced_positions = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    label = f"{case.selector} at {case.candidates} candidates"
    expected = min(case.batch, case.candidates)
    distinct = int(np.unique(positions).size)
    if positions.size != expected or distinct != expected:
        raise SystemExit(
            f"{label}: expected {expected} distinct positions, got {positions.size} "
            f"with {distinct} distinct"
        )
    if not np.array_equal(positions, traced_positions):
        raise SystemExit(f"{label}: the traced call selected other positions than the timed calls")

    best_s, cpu_s = min(durations)
    peak_bytes = peak - baseline
    dense_bytes = case.dense_gradient_bytes
    return {
        "selector": case.selector,
        "candidates": case.candidates,
        "classes": case.classes,
        "dims": case.dims,
        "labeled_rows": case.labeled_rows,
        "batch": case.batch,
        "selected": int(positions.size),
        "distinct": distinct,
        "repeats": repeats,
        "best_s": round(best_s, 4),
        "cpu_s": round(cpu_s, 4),
        "candidates_per_s": round(case.candidates / best_s),
        "input_mib": round(input_bytes / MIB, 2),
        "peak_mib": round(peak_bytes / MIB, 2),
        "peak_bytes_per_candidate": round(peak_bytes / case.candidates, 1),
        "float64_row_bytes": case.float64_row_bytes,
        "dense_gradient_mib": "" if dense_bytes is None else round(dense_bytes / MIB, 1),
        "dense_over_peak": "" if dense_bytes is None else round(dense_bytes / max(peak_bytes, 1), 1),
    }












def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number in (0, 1]") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number in (0, 1]")
    return value


def _badge_shape(text: str) -> tuple[int, int, int] | None:
    if text.strip().lower() == "none":
        return None
    parts = text.lower().split("x")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}: expected CANDIDATESxCLASSESxDIMS, such as 20000x100x768, or none"
        )
    candidates, classes, dims = (positive_int(part.strip()) for part in parts)
    return candidates, classes, dims


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser, which rejects non-positive sizes and unknown selectors."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.selection_scaling", description=__doc__.splitlines()[0]
    )

    parser.add_argument(
        "--sizes", type=int_list, default=[10_000, 100_000], help="comma-separated candidate counts, each >= 1"
    )
    parser.add_argument(
        "--selectors",
        type=choice_list(SELECTORS, "selector"),
        default=list(SELECTORS),
        help=f"comma-separated selectors to run, from {', '.join(SELECTORS)}",
    )
    parser.add_argument("--dims", type=positive_int, default=64, help="feature or embedding columns")
    parser.add_argument("--classes", type=positive_int, default=10, help="classes of the softmax model")

    batch = parser.add_mutually_exclusive_group()
    batch.add_argument(
        "--batch-fraction",
        type=_fraction,
        default=0.01,
        help="rows selected, as a fraction of the candidates (rounded up)",
    )
    batch.add_argument("--batch", type=positive_int, help="rows selected at every size, instead of a fraction")

    parser.add_argument(
        "--labeled-rows",
        type=non_negative_int,
        default=1000,
        help="labeled rows that core-set starts from as centers, or 0 for an empty labeled set",
    )
    parser.add_argument(
        "--badge-wide",
        type=_badge_shape,
        default=(20_000, 100, 768),
        help="one more BADGE case, CANDIDATESxCLASSESxDIMS, or none to skip it; "
        "its batch is always --batch-fraction of its candidates",
    )
    parser.add_argument("--repeats", type=positive_int, default=1, help="timed calls per case, of which the fastest is reported")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of inputs and selectors")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "selection_scaling.csv", help="CSV file to write"
    )
    return parser


def build_cases(args: argparse.Namespace) -> list[Case]:
    """Return the cases in run order: each size for each selector, then the wide BADGE case."""

    def fraction_of(candidates: int) -> int:
        # Rounding first keeps 0.07 * 100 = 7.000000000000001 from becoming 8.
        return max(1, math.ceil(round(args.batch_fraction * candidates, 6)))

    def batch_for(candidates: int) -> int:
        return args.batch if args.batch is not None else fraction_of(candidates)

    cases = [
        Case(
            selector,
            size,
            args.classes,
            args.dims,
            batch_for(size),
            args.labeled_rows if selector == "coreset" else 0,
        )
        for selector in args.selectors
        for size in args.sizes
    ]
    if args.badge_wide is not None and "badge" in args.selectors:
        candidates, classes, dims = args.badge_wide
        # The wide case keeps its fractional batch under --batch, so its row
        # stays comparable between runs that size the main cases differently.
        cases.append(Case("badge", candidates, classes, dims, fraction_of(candidates)))
    return cases


def write_csv(rows: Sequence[dict[str, object]], path: Path) -> None:
    """Write ``rows`` to ``path`` atomically, one column per name in :data:`CSV_COLUMNS`."""
    write_csv_atomic(path, CSV_COLUMNS, [[row.get(column, "") for column in CSV_COLUMNS] for row in rows])


TABLE_HEADER = (
    "| selector | candidates | classes | dims | batch | best s | CPU s | candidates/s | input MiB "
    "| peak MiB above inputs | peak bytes/candidate | float64 bytes/row | dense gradient MiB "
    "| dense / peak |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def format_row(row: dict[str, object]) -> str:
    """Return one markdown table line for a CSV row; blank BADGE-only cells print as a dash."""
    dense_mib = row["dense_gradient_mib"]
    dense_ratio = row["dense_over_peak"]
    cells = [
        str(row["selector"]),
        f"{row['candidates']:,}",
        str(row["classes"]),
        str(row["dims"]),
        f"{row['batch']:,}",
        f"{row['best_s']:.3f}",
        f"{row['cpu_s']:.3f}",
        f"{row['candidates_per_s']:,}",
        f"{row['input_mib']:.1f}",
        f"{row['peak_mib']:.1f}",
        f"{row['peak_bytes_per_candidate']:,.0f}",
        str(row["float64_row_bytes"]),
        "–" if dense_mib == "" else f"{dense_mib:,.0f}",
        "–" if dense_ratio == "" else f"{dense_ratio:,.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def machine_line() -> str:
    """Return cores, architecture, RAM and the versions that the timings depend on."""
    memory_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return (
        f"machine: {os.cpu_count()} cores {platform.machine()}, {memory_gib:.0f} GiB RAM, "
        f"Python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run every case, print the markdown table as rows finish, and write the CSV."""
    args = build_parser().parse_args(argv)
    rows = []
    print(TABLE_HEADER, flush=True)
    for case in build_cases(args):
        row = measure_case(case, args.repeats, args.seed)
        rows.append(row)
        print(format_row(row), flush=True)
        gc.collect()
    write_csv(rows, args.out)
    print(machine_line())
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
