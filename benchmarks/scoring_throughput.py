"""Pool-scoring throughput and peak memory: al_ray in-process and on Ray Data, numpy, modAL, scikit-activeml.

Every tool runs margin sampling, which picks the ``n`` rows with the smallest
gap between the two likeliest classes. All of them score the same synthetic
pool, whose features are a function of the seed and ``row_id``
(``benchmarks/_synthetic_pool.py``), with the same fitted model, in one run
on one machine:

- ``al_ray_local``: ``al_ray.scoring.score_pool`` with ``scoring.mode: local``.
- ``al_ray_ray``: ``al_ray.scoring.distributed.score_dataset_ray``, the Ray Data
  actor pool of ``scoring.mode: ray``, over a dataset that Ray Data generates
  from ``row_id`` in its workers, so the driver never holds the pool. The
  dataset is materialized in the object store before the clock starts when it
  fits in half of the store. Larger pools stream, and their time includes
  generating the rows.
- ``numpy``: a plain single-process scorer (matrix products, softmax, margin,
  ``argpartition`` top n over chunks of 65,536 rows).
- ``modal``: ``modAL.uncertainty.margin_sampling``.
- ``skactiveml``: ``skactiveml.pool.UncertaintySampling(method="margin_sampling")``.

Models: scikit-learn ``LogisticRegression`` and ``MLPClassifier`` (one hidden
layer of 100 ReLU units), 10 classes, fitted once per feature count in float64
on 2,000 labeled rows.

Each in-memory tool runs in a child process under an address-space limit
(``RLIMIT_AS``, ``--memory-limit-gib``), so a tool that needs more memory
stops with "did not fit" and the machine keeps running. Its peak memory is
the child's peak RSS (pool included). For Ray Data, a thread samples the
driver's RSS and the PSS of the driver's whole process tree (every Ray
process of the session) every 0.1 s during the call.

Run:  python -m benchmarks.scoring_throughput [--features 64,784] [--sizes 10000,...] [--smoke]
Writes scoring_throughput.csv, scoring_throughput.png and scoring_throughput.md to --out-dir.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import pickle
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from al_ray.loop.outputs import write_csv_atomic
from benchmarks._args import choice_list, int_list, positive_int
from benchmarks._in_memory import IN_MEMORY_TOOLS, InMemorySpec, run_in_memory
from benchmarks._memory import MIB, MemorySampler, available_bytes, total_bytes
from benchmarks._ray_scoring import RayScoring, object_store_bytes, score_on_ray
from benchmarks._report import load_average, save_figure, write_text_atomic
from benchmarks._synthetic_pool import fit_models, pool_bytes, pool_dataset
from benchmarks._throughput_report import render_markdown

__all__ = ["CSV_COLUMNS", "MODELS", "TOOLS", "build_parser", "main"]

logger = logging.getLogger(__name__)

RESULTS = Path(__file__).resolve().parent / "results"
TOOLS = ("al_ray_local", "al_ray_ray", "numpy", "modal", "skactiveml")
MODELS = ("logistic", "mlp")
CSV_COLUMNS = (
    "features",
    "model",
    "rows",
    "tool",
    "status",
    "seconds",
    "rows_per_s",
    "driver_peak_rss_mib",
    "tree_peak_pss_mib",
    "tree_peak_rss_mib",
    "pool_mib",
    "pool_build_s",
    "ray_pool",
    "overlap",
    "load_1min",
    "detail",
)
GIB = 2**30
# Kept free for the rest of the machine when the limit is derived from free memory.
RESERVE_BYTES = 4 * GIB
# Ray Data keeps a generated pool in the object store only when it fills at most this share of it.
MATERIALIZE_SHARE = 0.5
BLOCK_BYTES = 64 * MIB
SMOKE_ARGS = ["--features", "16", "--sizes", "2000,20000", "--memory-limit-gib", "4"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scoring_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int_list, default=[64, 784], help="comma-separated feature counts")
    parser.add_argument(
        "--sizes", type=int_list, default=[10_000, 100_000, 1_000_000, 3_000_000, 10_000_000],
        help="comma-separated pool sizes in rows",
    )
    parser.add_argument("--models", type=choice_list(MODELS, "model"), default=list(MODELS), help="comma-separated models")
    parser.add_argument("--tools", type=choice_list(TOOLS, "tool"), default=list(TOOLS), help="comma-separated tools")
    parser.add_argument("--n", type=positive_int, default=100, help="rows selected per query")
    parser.add_argument("--seed", type=int, default=0, help="seed of the pool, the training rows and the models")
    parser.add_argument("--batch-rows", type=positive_int, default=4096, help="al_ray's scoring.batch_rows")
    parser.add_argument("--num-actors", type=positive_int, default=2, help="al_ray's scoring.num_actors")
    parser.add_argument("--actor-num-cpus", type=float, default=0.5, help="al_ray's scoring.actor_num_cpus")
    parser.add_argument("--num-cpus", type=positive_int, default=2, help="logical CPUs of the local Ray")
    parser.add_argument(
        "--memory-limit-gib", type=float,
        help="address-space limit of each in-memory child, in GiB (default: free memory at start minus 4 GiB)",
    )
    parser.add_argument("--timeout-s", type=float, default=1800.0, help="time limit of each in-memory child, in seconds")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="folder for the CSV, PNG and markdown files")
    parser.add_argument("--smoke", action="store_true", help=f"a seconds-long run: {' '.join(SMOKE_ARGS)}")
    return parser


def _memory_limit_bytes(args: argparse.Namespace) -> int:
    if args.memory_limit_gib is not None:
        return int(args.memory_limit_gib * GIB)
    return max(GIB, min(total_bytes(), available_bytes() - RESERVE_BYTES))


def run_in_memory_tools(
    args: argparse.Namespace, models_paths: dict[int, str], limit_bytes: int, on_row: Callable[[list[dict]], None]
) -> list[dict]:
    """Run every in-memory tool on every shape in its own child process; return the CSV rows.

    ``on_row`` gets the rows so far after each row, so a run cut short keeps what it measured.
    """
    rows = []
    tools = [tool for tool in args.tools if tool in IN_MEMORY_TOOLS]
    for n_features in args.features:
        for size in args.sizes:
            for model in args.models:
                for tool in tools:
                    row = _base_row(n_features, model, size, tool)
                    # Checked before each child: other work on the machine may hold memory now.
                    free = available_bytes()
                    if pool_bytes(size, n_features) < limit_bytes and pool_bytes(size, n_features) > free - GIB:
                        row.update(
                            status="skipped",
                            detail=f"the pool needs {pool_bytes(size, n_features) / GIB:.1f} GiB and "
                            f"{free / GIB:.1f} GiB was free",
                        )
                        rows.append(row)
                        on_row(rows)
                        continue
                    spec = InMemorySpec(
                        tool, size, n_features, model, models_paths[n_features], args.n, args.seed, args.batch_rows, limit_bytes
                    )
                    result = run_in_memory(spec, args.timeout_s)
                    row.update(
                        status=result.status,
                        seconds=result.seconds if result.status == "ok" else "",
                        rows_per_s=size / result.seconds if result.status == "ok" and result.seconds > 0 else "",
                        driver_peak_rss_mib=result.peak_rss_bytes / MIB if result.peak_rss_bytes else "",
                        tree_peak_rss_mib=result.peak_rss_bytes / MIB if result.peak_rss_bytes else "",
                        pool_build_s=result.pool_build_s or "",
                        detail=result.detail,
                        selected=result.selected,
                    )
                    rows.append(row)
                    _print_row(row)
                    on_row(rows)
    return rows


def run_ray_tool(args: argparse.Namespace, models: dict[int, dict], on_row: Callable[[list[dict]], None]) -> list[dict]:
    """Score every shape with al_ray's Ray Data path in one local Ray session; return the CSV rows."""
    from al_ray.config import RayConfig
    from al_ray.runtime import ray_session

    settings = RayScoring(args.batch_rows, args.num_actors, args.actor_num_cpus)
    rows = []
    with ray_session(RayConfig(num_cpus=args.num_cpus)), MemorySampler() as sampler:
        capacity = object_store_bytes()
        # The first Ray Data run of a session imports Ray Data in fresh workers; keep it off the clock.
        first_models = models[args.features[0]]
        score_on_ray(pool_dataset(1000, args.features[0], args.seed, 2), first_models[args.models[0]], args.n, args.seed, settings)
        for n_features in args.features:
            for size in args.sizes:
                blocks = max(8, -(-pool_bytes(size, n_features) // BLOCK_BYTES))
                dataset = pool_dataset(size, n_features, args.seed, blocks, generate_num_cpus=0.5)
                mode = "streamed"
                build_s: float | str = ""
                if pool_bytes(size, n_features) <= MATERIALIZE_SHARE * capacity:
                    started = time.perf_counter()
                    dataset = dataset.materialize()
                    build_s = time.perf_counter() - started
                    mode = "materialized"
                for model in args.models:
                    row = _base_row(n_features, model, size, "al_ray_ray")
                    row["ray_pool"] = mode
                    try:
                        with sampler.window() as peak:
                            selected, seconds = score_on_ray(dataset, models[n_features][model], args.n, args.seed, settings)
                    except Exception as error:  # recorded in the table with its message, and the run goes on
                        logger.exception("Ray Data scoring failed at %d rows x %d features, %s", size, n_features, model)
                        row.update(status="failed", detail=f"{type(error).__name__}: {error}"[:300])
                    else:
                        row.update(
                            status="ok",
                            seconds=seconds,
                            rows_per_s=size / seconds,
                            driver_peak_rss_mib=peak.driver_rss / MIB,
                            tree_peak_pss_mib=peak.tree_pss / MIB,
                            tree_peak_rss_mib=peak.tree_rss / MIB,
                            pool_build_s=build_s,
                            selected=[int(row_id) for row_id in selected],
                        )
                    rows.append(row)
                    _print_row(row)
                    on_row(rows)
                del dataset
                gc.collect()
    return rows


def _base_row(n_features: int, model: str, size: int, tool: str) -> dict:
    row = dict.fromkeys(CSV_COLUMNS, "")
    row.update(features=n_features, model=model, rows=size, tool=tool, pool_mib=pool_bytes(size, n_features) / MIB)
    row["load_1min"] = load_average()
    return row


def _print_row(row: dict) -> None:
    rate = f"{row['rows_per_s']:>12,.0f} rows/s" if row["rows_per_s"] != "" else f"{row['status']:>19}"
    peak = f"{row['driver_peak_rss_mib']:>8,.0f} MiB" if row["driver_peak_rss_mib"] != "" else ""
    print(f"{row['features']:>4} {row['model']:<8} {row['rows']:>11,} {row['tool']:<13} {rate} {peak}", flush=True)


REFERENCE_TOOLS = ("al_ray_ray", "al_ray_local", "numpy")


def add_overlaps(rows: list[dict], n: int) -> None:
    """Set each row's ``overlap``: the share of its picks that the reference tool also picked.

    The reference is the first of al_ray on Ray Data, al_ray in-process and
    numpy that has a selection for the same features, model and pool size.
    """
    selections = {
        (row["features"], row["model"], row["rows"], row["tool"]): set(row["selected"])
        for row in rows
        if row.get("selected")
    }
    for row in rows:
        if not row.get("selected"):
            continue
        key = (row["features"], row["model"], row["rows"])
        for reference in REFERENCE_TOOLS:
            if key + (reference,) in selections:
                common = len(selections[key + (reference,)] & set(row["selected"]))
                row["overlap"] = common / min(n, len(row["selected"]))
                break


def plot(rows: Sequence[dict], path: Path) -> None:
    """Plot rows/s and peak driver memory against pool size, one panel per feature count and model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys((row["features"], row["model"]) for row in rows))
    figure, axes = plt.subplots(2, len(shapes), figsize=(4.2 * len(shapes), 7.5), squeeze=False)
    for column, (n_features, model) in enumerate(shapes):
        for tool in TOOLS:
            points = [
                row for row in rows
                if (row["features"], row["model"], row["tool"]) == (n_features, model, tool) and row["status"] == "ok"
            ]
            if not points:
                continue
            sizes = [row["rows"] for row in points]
            axes[0][column].plot(sizes, [row["rows_per_s"] for row in points], marker="o", label=tool)
            axes[1][column].plot(sizes, [row["driver_peak_rss_mib"] for row in points], marker="o", label=tool)
        axes[0][column].set_title(f"{n_features} features, {model}")
        axes[0][column].set_ylabel("rows/s (margin, top n)")
        axes[1][column].set_ylabel("peak driver RSS, MiB")
        for axis in axes[:, column]:
            axis.set_xscale("log")
            axis.set_yscale("log")
            axis.set_xlabel("pool rows")
            axis.grid(alpha=0.3, which="both")
            axis.legend(fontsize=7)
    figure.suptitle("Pool scoring: throughput and peak memory (missing points: did not fit)")
    figure.tight_layout()
    save_figure(figure, path)


def main(argv: Sequence[str] | None = None, *, command: str | None = None) -> list[dict]:
    """Run every tool on every shape, write the CSV, PNG and markdown files, and return the rows.

    ``command`` is the command line printed in the markdown section; by
    default, this module's own with ``argv``.
    """
    arguments = list(argv if argv is not None else sys.argv[1:])
    args = build_parser().parse_args(arguments)
    if args.smoke:
        args = build_parser().parse_args(arguments + SMOKE_ARGS)
    command = command or shlex.join(["python", "-m", "benchmarks.scoring_throughput", *arguments])
    limit_bytes = _memory_limit_bytes(args)
    load_start = load_average()
    started = time.perf_counter()

    # Set before Ray starts: no usage reporting, and no token file for a throwaway local session.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    out_dir: Path = args.out_dir
    csv_path = out_dir / "scoring_throughput.csv"

    def write_rows(measured: list[dict]) -> None:
        write_csv_atomic(csv_path, CSV_COLUMNS, [[row[column] for column in CSV_COLUMNS] for row in measured])

    models = {n_features: fit_models(n_features, args.seed, args.models) for n_features in args.features}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="al_ray_throughput_") as folder:
        models_paths = {}
        for n_features, fitted in models.items():
            models_paths[n_features] = os.path.join(folder, f"models_{n_features}.pkl")
            with open(models_paths[n_features], "wb") as stream:
                pickle.dump(fitted, stream)
        # In-memory children first, while no Ray session uses memory.
        rows.extend(run_in_memory_tools(args, models_paths, limit_bytes, write_rows))
    if "al_ray_ray" in args.tools:
        rows.extend(run_ray_tool(args, models, lambda ray_rows: write_rows(rows + ray_rows)))
    add_overlaps(rows, args.n)
    rows.sort(key=lambda row: (row["features"], row["model"], row["rows"], TOOLS.index(row["tool"])))

    write_rows(rows)
    plot(rows, out_dir / "scoring_throughput.png")
    markdown = render_markdown(
        rows,
        command=command,
        args=args,
        limit_bytes=limit_bytes,
        loads=(load_start, load_average()),
        wall_s=time.perf_counter() - started,
    )
    write_text_atomic(out_dir / "scoring_throughput.md", markdown)
    print(markdown)
    return rows


if __name__ == "__main__":
    main()
