"""The benchmark tables that ``python -m benchmarks`` runs: module, outputs, smoke arguments and plot.

A module that writes its own markdown section (``markdown``) supplies the
whole RESULTS.md body, and one that updates RESULTS.md itself
(``writes_section``) gets the file's path. For the others the runner builds the body from their
CSV: the command, the machine, the date, the load average, the CSV as a
table and a plot drawn from :class:`PlotSpec`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["TABLES", "PlotSpec", "Table", "csv_markdown", "plot_csv"]


@dataclass(frozen=True)
class PlotSpec:
    """A line plot of CSV columns: ``ys`` against ``x``, one line per distinct ``series`` value."""

    x: str
    ys: tuple[str, ...]
    series: tuple[str, ...] = ()
    where: dict[str, str] = field(default_factory=dict)
    """Only rows whose columns equal these values."""

    log_x: bool = True
    log_y: bool = True
    panel_per_y: bool = False
    """Whether each column of ``ys`` gets its own axes, for columns in different units."""


@dataclass(frozen=True)
class Table:
    """One table of RESULTS.md and the module that measures it."""

    name: str
    title: str
    module: str
    output_args: Callable[[Path], list[str]]
    """Arguments that send the module's files to an output folder."""

    csv_names: tuple[str, ...]
    smoke_args: tuple[str, ...] = ()
    runs: tuple[tuple[str, ...], ...] = ((),)
    """Arguments of each invocation; most tables need one, scoring_crossover runs once per feature count."""

    markdown: str | None = None
    """File name of the section the module writes itself, in the output folder."""

    plot: PlotSpec | None = None
    takes_command: bool = False
    """Whether the module's ``main`` takes ``command=``, the command line to print in its section."""

    writes_section: bool = False
    """Whether the module replaces its RESULTS.md section itself, given ``--results-md``."""


def _out_dir(folder: Path) -> list[str]:
    return ["--out-dir", str(folder)]


def _out_file(name: str, flag: str = "--out") -> Callable[[Path], list[str]]:
    return lambda folder: [flag, str(folder / name)]


TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        Table(
            "label_efficiency",
            "Label efficiency: every strategy against random, al_ray and peers",
            "label_efficiency",
            _out_dir,
            ("label_efficiency.csv", "label_efficiency_summary.csv"),
            smoke_args=(
                "--datasets", "letter_recognition", "--seeds", "1", "--rounds", "2", "--batch", "5",
                "--initial", "26", "--pool-size", "200", "--test-size", "300",
            ),
            writes_section=True,
        ),
        Table(
            "scoring_throughput",
            "Pool scoring throughput and memory: al_ray against numpy, modAL and scikit-activeml",
            "scoring_throughput",
            _out_dir,
            ("scoring_throughput.csv",),
            smoke_args=("--smoke",),
            markdown="scoring_throughput.md",
            takes_command=True,
        ),
        Table(
            "huge_pool",
            "A pool larger than memory: 10^8 rows generated and scored on Ray Data",
            "huge_pool",
            _out_dir,
            ("huge_pool.csv", "huge_pool_memory.csv"),
            smoke_args=("--smoke",),
            markdown="huge_pool.md",
            takes_command=True,
        ),
        Table(
            "selection_scaling",
            "Batch-diverse selection: time and memory against the candidate count",
            "selection_scaling",
            _out_file("selection_scaling.csv"),
            ("selection_scaling.csv",),
            smoke_args=("--sizes", "1000", "--badge-wide", "none"),
            plot=PlotSpec("candidates", ("best_s", "peak_mib"), ("selector", "classes", "dims"), panel_per_y=True),
        ),
        Table(
            "scoring_crossover",
            "Pool scoring: in-process against Ray Data",
            "scoring_crossover",
            _out_dir,
            ("scoring_crossover_64.csv", "scoring_crossover_784.csv"),
            smoke_args=("--sizes", "2000", "--repeats", "1"),
            runs=(("--features", "64"), ("--features", "784")),
            plot=PlotSpec("rows", ("local_rows_per_s", "ray_rows_per_s"), ("features",)),
        ),
        Table(
            "committee_scoring",
            "Committee scoring on Ray: committee sent to scoring actors, or member actors scoring blocks",
            "committee_scoring",
            _out_file("committee_scoring.csv", "--output"),
            ("committee_scoring.csv",),
            smoke_args=("--sizes", "2000", "--repeats", "1", "--members", "2"),
            plot=PlotSpec("rows", ("a_rows_per_s", "b_rows_per_s")),
        ),
        Table(
            "serve_latency",
            "Serving: latency the canary router adds, and throughput",
            "serve_latency",
            _out_file("serve_latency.csv"),
            ("serve_latency.csv",),
            smoke_args=(
                "--datasets", "letter_recognition", "--rows", "1", "--requests", "20", "--warm-up", "2",
                "--clients", "1", "--seconds", "1",
            ),
            plot=PlotSpec(
                "clients", ("requests_per_s",), ("dataset", "split", "path", "rows_per_request"),
                where={"phase": "throughput"},
            ),
        ),
        Table(
            "labeling_latency",
            "Labeling service latency under concurrent annotators",
            "labeling_latency",
            _out_file("labeling_latency.csv"),
            ("labeling_latency.csv",),
            smoke_args=("--smoke",),
            plot=PlotSpec("annotators", ("p50_ms", "p95_ms"), ("database", "operation"), log_x=False),
        ),
        Table(
            "elec2_watch",
            "Drift watch on the ELEC2 stream",
            "elec2_watch",
            _out_file("elec2_watch.csv"),
            ("elec2_watch.csv", "elec2_watch_shifts.csv"),
            smoke_args=("--smoke",),
            plot=PlotSpec("end_row", ("accuracy_live",), ("variant",), log_x=False, log_y=False),
        ),
    )
}  # fmt: skip


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        return list(reader.fieldnames or []), list(reader)


def _cell(text: str) -> str:
    """Round a number to 4 significant digits, or to a whole number from 1,000 on; leave other text as it is."""
    try:
        value = float(text)
    except ValueError:
        return text.replace("|", "/") or "–"
    if abs(value) >= 1000 or value.is_integer():
        return f"{value:,.0f}"
    return f"{value:.4g}"


def csv_markdown(columns: Sequence[str], rows: Sequence[dict[str, str]]) -> list[str]:
    """Return the CSV as markdown table lines, numbers rounded to 4 significant digits."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(column, "")) for column in columns) + " |" for row in rows]
    return lines


def plot_csv(rows: Sequence[dict[str, str]], spec: PlotSpec, title: str, path: Path) -> None:
    """Draw ``spec`` from CSV rows to a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks._report import save_figure

    selected = [row for row in rows if all(row.get(key) == value for key, value in spec.where.items())]
    groups: dict[tuple[str, ...], list[dict[str, str]]] = {}
    for row in selected:
        groups.setdefault(tuple(row.get(column, "") for column in spec.series), []).append(row)
    panels = [(y,) for y in spec.ys] if spec.panel_per_y else [spec.ys]
    figure, axes = plt.subplots(1, len(panels), figsize=(7.5 * len(panels), 4.8), squeeze=False)
    for axis, ys in zip(axes[0], panels):
        for group, members in groups.items():
            members = sorted(members, key=lambda row: float(row[spec.x]))
            for y in ys:
                points = [(float(row[spec.x]), float(row[y])) for row in members if row.get(y, "") != ""]
                if not points:
                    continue
                label = " ".join([*group, y] if len(ys) > 1 else list(group)) or y
                axis.plot([x for x, _ in points], [value for _, value in points], marker="o", label=label)
        axis.set_xlabel(spec.x)
        axis.set_ylabel(", ".join(ys))
        if spec.log_x:
            axis.set_xscale("log")
        if spec.log_y:
            axis.set_yscale("log")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure(figure, path)
