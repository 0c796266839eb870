"""Score a pool larger than memory: 10^8 rows × 64 float32 features, generated and scored on Ray Data.

The pool never exists as a whole. ``ray.data.range(rows)`` makes the row ids,
a Ray Data task turns each block of ids into its features (a function of the
seed and ``row_id``, see ``benchmarks/_synthetic_pool.py``), and al_ray's
distributed scoring path (``al_ray.scoring.distributed.score_dataset_ray``)
scores the blocks in an actor pool. Each batch returns only its top ``n`` rows,
and the driver merges them. A thread samples the driver's RSS and the PSS of
the whole Ray process tree every ``--sample-interval-s``.

The run has three phases:

1. Probe: the in-memory tools (al_ray in-process, numpy, modAL and
   scikit-activeml) score pools of ``--probe-sizes`` rows, each in a child
   process under an address-space limit, to find the largest pool each one
   survives.
2. Calibration: the Ray Data path scores ``--calibrate-rows`` rows in the same
   streamed way, and the rate gives an estimate of the full run's time.
3. The run: ``--rows`` rows, or fewer when the estimate exceeds
   ``--max-minutes``. The table then states how many rows ran.

Run:  python -m benchmarks.huge_pool [--rows 100000000] [--smoke]
Writes huge_pool.csv, huge_pool_memory.csv, huge_pool.png and huge_pool.md to --out-dir.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from al_ray.loop.outputs import write_csv_atomic
from benchmarks._args import choice_list, int_list, positive_int
from benchmarks._in_memory import IN_MEMORY_TOOLS, InMemorySpec, run_in_memory
from benchmarks._memory import MIB, MemorySampler, available_bytes, total_bytes
from benchmarks._ray_scoring import RayScoring, score_on_ray
from benchmarks._report import load_average, save_figure, write_text_atomic
from benchmarks._synthetic_pool import fit_models, pool_bytes, pool_dataset

__all__ = ["CSV_COLUMNS", "MEMORY_COLUMNS", "build_parser", "main", "planned_rows"]

RESULTS = Path(__file__).resolve().parent / "results"
GIB = 2**30
RESERVE_BYTES = 4 * GIB
CSV_COLUMNS = (
    "phase",
    "tool",
    "rows",
    "features",
    "model",
    "status",
    "seconds",
    "rows_per_s",
    "driver_peak_rss_mib",
    "tree_peak_pss_mib",
    "pool_gib",
    "overlap",
    "load_1min",
    "detail",
)
MEMORY_COLUMNS = ("seconds", "driver_rss_mib", "tree_pss_mib")
SMOKE_ARGS = [
    "--rows", "200000", "--calibrate-rows", "50000", "--probe-sizes", "50000",
    "--probe-tools", "al_ray_local,numpy", "--block-rows", "20000", "--memory-limit-gib", "4",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.huge_pool", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=positive_int, default=100_000_000, help="pool rows of the full run")
    parser.add_argument("--features", type=positive_int, default=64, help="float32 features per row")
    parser.add_argument("--model", choices=("logistic", "mlp"), default="logistic", help="the scoring model")
    parser.add_argument("--n", type=positive_int, default=100, help="rows selected")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool, the training rows and the model")
    parser.add_argument("--block-rows", type=positive_int, default=100_000, help="rows per generated Ray Data block")
    parser.add_argument("--batch-rows", type=positive_int, default=4096, help="al_ray's scoring.batch_rows")
    parser.add_argument("--num-actors", type=positive_int, default=2, help="al_ray's scoring.num_actors")
    parser.add_argument("--actor-num-cpus", type=float, default=0.5, help="al_ray's scoring.actor_num_cpus")
    parser.add_argument("--generate-num-cpus", type=float, default=0.5, help="CPUs reserved per generating task")
    parser.add_argument("--num-cpus", type=positive_int, default=2, help="logical CPUs of the local Ray")
    parser.add_argument("--calibrate-rows", type=positive_int, default=10_000_000, help="rows of the calibration run")
    parser.add_argument(
        "--max-minutes", type=float, default=40.0,
        help="cap the full run at the rows the calibration rate scores in this many minutes",
    )
    parser.add_argument(
        "--probe-sizes", type=int_list, default=[10_000_000, 20_000_000, 50_000_000, 100_000_000],
        help="comma-separated pool sizes for the in-memory tools",
    )
    parser.add_argument(
        "--probe-tools", type=choice_list(IN_MEMORY_TOOLS, "tool"), default=list(IN_MEMORY_TOOLS),
        help="comma-separated in-memory tools to probe",
    )
    parser.add_argument(
        "--memory-limit-gib", type=float,
        help="address-space limit of each in-memory child, in GiB (default: free memory at start minus 4 GiB)",
    )
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="time limit of each in-memory child, in seconds")
    parser.add_argument("--sample-interval-s", type=float, default=0.5, help="seconds between memory samples")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="folder for the CSV, PNG and markdown files")
    parser.add_argument("--smoke", action="store_true", help=f"a seconds-long run: {' '.join(SMOKE_ARGS)}")
    return parser


def _row(phase: str, tool: str, rows: int, args: argparse.Namespace) -> dict:
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(
        phase=phase, tool=tool, rows=rows, features=args.features, model=args.model,
        pool_gib=pool_bytes(rows, args.features) / GIB, load_1min=load_average(),
    )  # fmt: skip
    return row


def probe_in_memory(args: argparse.Namespace, models_path: str, limit_bytes: int) -> list[dict]:
    """Run each in-memory tool at each probe size in a memory-limited child; return the CSV rows."""
    rows = []
    for size in args.probe_sizes:
        for tool in args.probe_tools:
            row = _row("probe", tool, size, args)
            needed = pool_bytes(size, args.features)
            free = available_bytes()
            if needed < limit_bytes and needed > free - GIB:
                row.update(status="skipped", detail=f"the pool needs {needed / GIB:.1f} GiB and {free / GIB:.1f} GiB was free")
            else:
                spec = InMemorySpec(
                    tool, size, args.features, args.model, models_path, args.n, args.seed, args.batch_rows, limit_bytes
                )
                result = run_in_memory(spec, args.timeout_s)
                row.update(
                    status=result.status,
                    seconds=result.seconds if result.status == "ok" else "",
                    rows_per_s=size / result.seconds if result.status == "ok" and result.seconds > 0 else "",
                    driver_peak_rss_mib=result.peak_rss_bytes / MIB if result.peak_rss_bytes else "",
                    detail=result.detail,
                    selected=result.selected,
                )
            rows.append(row)
            print(f"probe {tool:<13} {size:>12,} rows: {row['status']} {row['detail']}", flush=True)
    return rows


def score_streamed(args: argparse.Namespace, model, rows: int, sampler: MemorySampler) -> dict:
    """Generate and score ``rows`` rows on Ray Data, streamed; return the CSV row with the selection."""
    settings = RayScoring(args.batch_rows, args.num_actors, args.actor_num_cpus)
    blocks = max(1, -(-rows // args.block_rows))
    dataset = pool_dataset(rows, args.features, args.seed, blocks, generate_num_cpus=args.generate_num_cpus)
    row = _row("run", "al_ray_ray", rows, args)
    with sampler.window() as peak:
        selected, seconds = score_on_ray(dataset, model, args.n, args.seed, settings)
    row.update(
        status="ok",
        seconds=seconds,
        rows_per_s=rows / seconds,
        driver_peak_rss_mib=peak.driver_rss / MIB,
        tree_peak_pss_mib=peak.tree_pss / MIB,
        selected=[int(row_id) for row_id in selected],
    )
    return row


def planned_rows(args: argparse.Namespace, calibration_rate: float) -> tuple[int, float]:
    """Return the rows to run within ``--max-minutes`` at the calibration rate, and the estimated seconds for ``--rows``."""
    estimate_s = args.rows / calibration_rate
    budget_s = args.max_minutes * 60
    if estimate_s <= budget_s:
        return args.rows, estimate_s
    # Whole millions, so the table states a round count that was actually run.
    affordable = int(calibration_rate * budget_s) // 1_000_000 * 1_000_000
    return max(args.calibrate_rows, affordable), estimate_s


def _overlap(row: dict, reference: dict | None, n: int) -> None:
    if reference and reference.get("selected") and row.get("selected"):
        row["overlap"] = len(set(row["selected"]) & set(reference["selected"])) / min(n, len(row["selected"]))


def run_on_ray(args: argparse.Namespace, model) -> tuple[list[dict], MemorySampler, dict]:
    """Calibrate, then run the large pool; return the CSV rows, the run's sampler and the plan."""
    from al_ray.config import RayConfig
    from al_ray.runtime import ray_session

    rows = []
    with ray_session(RayConfig(num_cpus=args.num_cpus)):
        with MemorySampler(interval_s=args.sample_interval_s) as sampler:
            # The first Ray Data run of a session imports Ray Data in fresh workers; keep it off the clock.
            score_on_ray(pool_dataset(1000, args.features, args.seed, 2), model, args.n, args.seed, RayScoring())
            calibration = score_streamed(args, model, args.calibrate_rows, sampler)
        calibration["phase"] = "calibration"
        rows.append(calibration)
        run_rows, estimate_s = planned_rows(args, calibration["rows_per_s"])
        plan = {"requested_rows": args.rows, "run_rows": run_rows, "estimate_s": estimate_s}
        print(
            f"calibration: {calibration['rows_per_s']:,.0f} rows/s; {args.rows:,} rows would take about "
            f"{estimate_s / 60:.1f} min; running {run_rows:,} rows",
            flush=True,
        )
        with MemorySampler(interval_s=args.sample_interval_s, keep_series=True) as run_sampler:
            rows.append(score_streamed(args, model, run_rows, run_sampler))
    return rows, run_sampler, plan


def plot(rows: Sequence[dict], sampler: MemorySampler, limit_bytes: int, path: Path) -> None:
    """Plot the run's memory over time, and the probe's peak memory per tool and pool size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = sampler.series
    figure, (over_time, probe) = plt.subplots(1, 2, figsize=(12, 4.6))
    if series is not None and series.seconds:
        over_time.plot(series.seconds, [value / MIB for value in series.driver_rss], label="driver RSS")
        over_time.plot(series.seconds, [value / MIB for value in series.tree_pss], label="whole Ray tree PSS")
    run = next((row for row in rows if row["phase"] == "run"), None)
    over_time.set_title(f"Ray Data run, {run['rows']:,} rows" if run else "Ray Data run")
    over_time.set_xlabel("seconds")
    over_time.set_ylabel("MiB")
    over_time.set_ylim(bottom=0)
    over_time.grid(alpha=0.3)
    over_time.legend()
    limit_mib = limit_bytes / MIB
    for position, tool in enumerate(IN_MEMORY_TOOLS):
        points = [row for row in rows if row["phase"] == "probe" and row["tool"] == tool]
        fitted = [row for row in points if row["status"] == "ok"]
        failed = [row for row in points if row["status"] in ("did_not_fit", "failed")]
        color = f"C{position}"
        if fitted:
            sizes = [row["rows"] for row in fitted]
            probe.plot(sizes, [row["driver_peak_rss_mib"] for row in fitted], marker="o", color=color, label=tool)
        if failed:
            # Stacked above the limit line, one height per tool, so that failures at one size stay apart.
            heights = [limit_mib * 1.25**position] * len(failed)
            probe.scatter([row["rows"] for row in failed], heights, marker="x", color=color, label=f"{tool}: did not fit")
    probe.axhline(total_bytes() / MIB, color="gray", linestyle="--", label="machine RAM")
    probe.axhline(limit_mib, color="gray", linestyle=":", label="address-space limit")
    probe.set_xscale("log")
    probe.set_yscale("log")
    probe.set_title("In-memory tools: peak RSS (x above the limit: did not fit)")
    probe.set_xlabel("pool rows")
    probe.set_ylabel("MiB")
    probe.grid(alpha=0.3, which="both")
    probe.legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)


def main(argv: Sequence[str] | None = None, *, command: str | None = None) -> list[dict]:
    """Probe the in-memory tools, calibrate, run the large pool, and write the CSV, PNG and markdown files."""
    from benchmarks._huge_pool_report import render_markdown

    arguments = list(argv if argv is not None else sys.argv[1:])
    args = build_parser().parse_args(arguments)
    if args.smoke:
        args = build_parser().parse_args(arguments + SMOKE_ARGS)
    command = command or shlex.join(["python", "-m", "benchmarks.huge_pool", *arguments])
    # Set before Ray starts: no usage reporting, and no token file for a throwaway local session.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    limit_bytes = int(args.memory_limit_gib * GIB) if args.memory_limit_gib else max(
        GIB, min(total_bytes(), available_bytes() - RESERVE_BYTES)
    )
    load_start = load_average()
    started = time.perf_counter()

    model = fit_models(args.features, args.seed, [args.model])[args.model]
    with tempfile.TemporaryDirectory(prefix="al_ray_huge_pool_") as folder:
        models_path = os.path.join(folder, "models.pkl")
        with open(models_path, "wb") as stream:
            pickle.dump({args.model: model}, stream)
        rows = probe_in_memory(args, models_path, limit_bytes)
    ray_rows, sampler, plan = run_on_ray(args, model)
    for ray_row in ray_rows:
        same_size = [row for row in rows if row["rows"] == ray_row["rows"] and row.get("selected")]
        reference = next((row for row in same_size if row["tool"] == "al_ray_local"), None) or next(iter(same_size), None)
        _overlap(ray_row, reference, args.n)
        if reference is not None:
            ray_row["reference"] = reference["tool"]
            ray_row["detail"] = f"overlap against {reference['tool']} at the same size"
    rows += ray_rows

    out_dir: Path = args.out_dir
    write_csv_atomic(out_dir / "huge_pool.csv", CSV_COLUMNS, [[row[column] for column in CSV_COLUMNS] for row in rows])
    series = sampler.series
    memory_rows = []
    if series is not None:
        memory_rows = [
            [f"{second:.2f}", f"{driver / MIB:.1f}", f"{tree / MIB:.1f}"]
            for second, driver, tree in zip(series.seconds, series.driver_rss, series.tree_pss)
        ]
    write_csv_atomic(out_dir / "huge_pool_memory.csv", MEMORY_COLUMNS, memory_rows)
    plot(rows, sampler, limit_bytes, out_dir / "huge_pool.png")
    driver_mib = [value / MIB for value in series.driver_rss] if series is not None else []
    markdown = render_markdown(
        rows,
        command=command,
        args=args,
        plan=plan,
        limit_bytes=limit_bytes,
        loads=(load_start, load_average()),
        driver_mib=driver_mib,
        wall_s=time.perf_counter() - started,
    )
    write_text_atomic(out_dir / "huge_pool.md", markdown)
    print(markdown)
    return rows


if __name__ == "__main__":
    main()

