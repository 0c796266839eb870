"""The markdown section of the larger-than-memory benchmark: probe table, calibration, run and memory."""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence

from benchmarks._memory import total_bytes
from benchmarks._report import machine_line
from benchmarks._throughput_report import DRIVER_TARGET_MIB, STATUS_TEXT, TOOL_TITLES

__all__ = ["largest_survived", "render_markdown"]

GIB = 2**30


def _probe_cell(row: dict | None) -> str:
    if row is None:
        return "–"
    if row["status"] != "ok":
        return STATUS_TEXT.get(row["status"], row["status"])
    return f"{row['seconds']:.1f} s, {row['driver_peak_rss_mib']:,.0f} MiB"


def probe_table(rows: Sequence[dict]) -> list[str]:
    probes = [row for row in rows if row["phase"] == "probe"]
    sizes = sorted({row["rows"] for row in probes})
    tools = [tool for tool in TOOL_TITLES if any(row["tool"] == tool for row in probes)]
    index = {(row["tool"], row["rows"]): row for row in probes}
    lines = [
        "| rows | pool GiB | " + " | ".join(TOOL_TITLES[tool] for tool in tools) + " |",
        "|---:|---:|" + "---:|" * len(tools),
    ]
    for size in sizes:
        pool_gib = next(row["pool_gib"] for row in probes if row["rows"] == size)
        cells = [_probe_cell(index.get((tool, size))) for tool in tools]
        lines.append(f"| {size:,} | {pool_gib:.1f} | " + " | ".join(cells) + " |")
    return lines


def largest_survived(rows: Sequence[dict]) -> dict[str, int | None]:
    """Return, per probed tool, the largest pool it scored; None when it scored none."""
    largest: dict[str, int | None] = {}
    for row in rows:
        if row["phase"] != "probe":
            continue
        current = largest.setdefault(row["tool"], None)
        if row["status"] == "ok" and (current is None or row["rows"] > current):
            largest[row["tool"]] = row["rows"]
    return largest


def _failure_lines(rows: Sequence[dict]) -> list[str]:
    return [
        f"- {TOOL_TITLES[row['tool']]} at {row['rows']:,} rows: {row['detail'] or STATUS_TEXT.get(row['status'], row['status'])}."
        for row in rows
        if row["phase"] == "probe" and row["status"] not in ("ok", "not_installed")
    ]


def _run_lines(rows: Sequence[dict], plan: dict, driver_mib: Sequence[float], n: int) -> list[str]:
    calibration = next(row for row in rows if row["phase"] == "calibration")
    run = next(row for row in rows if row["phase"] == "run")
    lines = [
        (
            f"- Calibration: {calibration['rows']:,} rows in {calibration['seconds']:.1f} s, "
            f"{calibration['rows_per_s']:,.0f} rows/s. At that rate {plan['requested_rows']:,} rows would take "
            f"about {plan['estimate_s'] / 60:.1f} min (an estimate)."
        ),
    ]
    if plan["run_rows"] == plan["requested_rows"]:
        lines.append(
            f"- The run: all {run['rows']:,} rows ({run['pool_gib']:.1f} GiB of features) generated, scored and "
            f"the top {n} selected in {run['seconds']:.0f} s ({run['seconds'] / 60:.1f} min), {run['rows_per_s']:,.0f} rows/s."
        )
    else:
        lines.append(
            f"- The run: {run['rows']:,} of the {plan['requested_rows']:,} rows requested "
            f"({run['pool_gib']:.1f} GiB of features), because the estimate exceeded --max-minutes; "
            f"{run['seconds']:.0f} s, {run['rows_per_s']:,.0f} rows/s. The full size was not run."
        )
    if driver_mib:
        verdict = "met" if max(driver_mib) < DRIVER_TARGET_MIB else "missed"
        lines.append(
            f"- Driver RSS during the run, {len(driver_mib)} samples: min {min(driver_mib):,.0f} MiB, "
            f"median {statistics.median(driver_mib):,.0f} MiB, max {max(driver_mib):,.0f} MiB "
            f"(target < 1.5 GB, {DRIVER_TARGET_MIB:,.0f} MiB: {verdict}). Peak PSS of the whole Ray process "
            f"tree: {run['tree_peak_pss_mib']:,.0f} MiB."
        )
    for row in (calibration, run):
        if row["overlap"] != "":
            lines.append(
                f"- At {row['rows']:,} rows the Ray Data selection shared {row['overlap']:.0%} of its {n} rows "
                f"with the {TOOL_TITLES[row['reference']]} selection of the same pool."
            )
    return lines


def render_markdown(
    rows: Sequence[dict],
    *,
    command: str,
    args: argparse.Namespace,
    plan: dict,
    limit_bytes: int,
    loads: tuple[float, float],
    driver_mib: Sequence[float],
    wall_s: float,
) -> str:
    """Return the RESULTS.md section body for the larger-than-memory run."""
    largest = largest_survived(rows)
    survived = [
        f"{TOOL_TITLES[tool]} {size:,} rows" if size is not None else f"{TOOL_TITLES[tool]} none"
        for tool, size in largest.items()
    ]
    parts = [
        f"`{command}`",
        "",
        (
            f"Machine: {machine_line()}, no swap. The 1-minute load average was {loads[0]:.1f} at the start "
            f"and {loads[1]:.1f} at the end (it counts other sessions' work on the same cores)."
        ),
        "",
        (
            f"The pool: {plan['requested_rows']:,} rows × {args.features} float32 features "
            f"({plan['requested_rows'] * args.features * 4 / 1e9:.1f} GB; the machine has "
            f"{total_bytes() / GIB:.1f} GiB of RAM). `ray.data.range` makes the row ids in blocks of "
            f"{args.block_rows:,}, a task with {args.generate_num_cpus} CPU generates each block's features from "
            f"`row_id` and the seed, and `score_dataset_ray` scores it: margin sampling with a {args.model} model, "
            f"{args.num_actors} actors × {args.actor_num_cpus} CPU, batches of {args.batch_rows} rows, top {args.n} "
            "per batch merged in the driver. Nothing is written to disk. Raw rows: `results/huge_pool.csv`; "
            "driver memory over time: `results/huge_pool_memory.csv`."
        ),
        "",
        *_run_lines(rows, plan, driver_mib, args.n),
        "",
        (
            f"**In-memory tools** (one child process each, under an address-space limit of "
            f"{limit_bytes / GIB:.1f} GiB; time of the query and the child's peak RSS, pool included):"
        ),
        "",
        *probe_table(rows),
        "",
        f"Largest pool scored: {'; '.join(survived)}.",
        "",
        *_failure_lines(rows),
        "",
        "![Driver memory during the run, and the in-memory tools' peak memory](results/huge_pool.png)",
        "",
        f"Total wall time of this run: {wall_s:.0f} s.",
    ]
    return "\n".join(parts) + "\n"
