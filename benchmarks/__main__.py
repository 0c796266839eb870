"""Run one benchmark table: ``python -m benchmarks TABLE [--smoke] [MODULE ARGS ...]``.

The table's module writes its CSV files to the output folder. This runner
then writes the PNG plot (unless the module draws its own) and the table's
section of benchmarks/RESULTS.md: the command, the machine, the date and the
load average, with the module's own markdown or the CSV as a table. Only the
text between the section's markers changes (see ``benchmarks/_report.py``).

``--smoke`` runs the table's seconds-long version into a temporary folder
and leaves RESULTS.md alone unless ``--results-md`` names a file.
Arguments this runner does not know go to the module, for example
``python -m benchmarks selection_scaling --sizes 10000``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks._report import RESULTS_MD, load_average, machine_line, replace_section
from benchmarks._tables import TABLES, Table, csv_markdown, plot_csv, read_csv

RESULTS = Path(__file__).resolve().parent / "results"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(TABLES), help="the table to measure")
    parser.add_argument("--smoke", action="store_true", help="run the seconds-long version into a temporary folder")
    parser.add_argument("--out-dir", type=Path, help="folder for the CSV and PNG files (default: benchmarks/results)")
    parser.add_argument(
        "--results-md", type=Path,
        help="markdown file whose section to update (default: benchmarks/RESULTS.md; with --smoke, none)",
    )
    return parser


@contextlib.contextmanager
def _argv(argv: Sequence[str]) -> Iterator[None]:
    """Set ``sys.argv`` for a module whose ``main`` reads it instead of taking arguments."""
    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        yield
    finally:
        sys.argv = saved


def _call_main(table: Table, argv: list[str], command: str) -> None:
    module = importlib.import_module(f"benchmarks.{table.module}")
    parameters = inspect.signature(module.main).parameters
    if table.takes_command:
        module.main(argv, command=command)
    elif parameters:
        module.main(argv)
    else:
        with _argv(argv):
            module.main()


def section_body(table: Table, out_dir: Path, command: str, started: float, loads: tuple[float, float]) -> str:
    """Return the RESULTS.md body: the module's own markdown, or one built from its CSV files."""
    if table.markdown is not None:
        written = out_dir / table.markdown
        if not written.exists() or written.stat().st_mtime < started:
            raise FileNotFoundError(f"{table.module} did not write {written}; its section is left unchanged")
        return written.read_text(encoding="utf-8")
    parts = [
        f"`{command}`",
        "",
        (
            f"Machine: {machine_line()}. The 1-minute load average was {loads[0]:.1f} at the start and "
            f"{loads[1]:.1f} at the end (it counts other work on the same cores)."
        ),
        "",
    ]
    for name in table.csv_names:
        path = out_dir / name
        if not path.exists():
            continue
        columns, rows = read_csv(path)
        parts += [f"Raw rows: `results/{name}`.", "", *csv_markdown(columns, rows), ""]
    if table.plot is not None:
        parts.append(f"![{table.title}](results/{table.name}.png)")
    return "\n".join(parts) + "\n"


def run_table(table: Table, module_args: list[str], smoke: bool, out_dir: Path, results_md: Path | None, command: str) -> None:
    """Run the table's module once per entry of ``table.runs``, then write the plot and the section."""
    started = time.time()
    load_start = load_average()
    section_args: list[str] = []
    if table.writes_section:
        # A smoke run without --results-md still needs a file to write; it stays in the output folder.
        section_args = ["--results-md", str(results_md if results_md is not None else out_dir / "RESULTS.md")]
    for run in table.runs:
        argv = [*run, *module_args, *table.output_args(out_dir), *section_args, *(table.smoke_args if smoke else ())]
        _call_main(table, argv, command)
    loads = (load_start, load_average())
    if table.plot is not None:
        rows = [row for name in table.csv_names if (out_dir / name).exists() for row in read_csv(out_dir / name)[1]]
        plot_csv(rows, table.plot, table.title, out_dir / f"{table.name}.png")
    if results_md is not None and not table.writes_section:
        replace_section(table.name, section_body(table, out_dir, command, started, loads), results_md, heading=f"## {table.title}")
        print(f"updated the {table.name} section of {results_md}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(argv if argv is not None else sys.argv[1:])
    args, module_args = build_parser().parse_known_args(arguments)
    table = TABLES[args.table]
    command = shlex.join(["python", "-m", "benchmarks", *arguments])
    if args.smoke:
        out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix=f"al_ray_{table.name}_smoke_"))
        results_md = args.results_md
    else:
        out_dir = args.out_dir or RESULTS
        results_md = args.results_md or RESULTS_MD
    out_dir.mkdir(parents=True, exist_ok=True)
    run_table(table, module_args, args.smoke, out_dir, results_md, command)
    print(f"wrote {table.name} outputs to {out_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
