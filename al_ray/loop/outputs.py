"""The run's output files, rewritten from the label store after every round.

The store is the single source of truth, so after a resume these files are
regenerated rather than appended to, and a kill mid-write leaves the previous
complete file (each is written to a temporary file, then renamed).
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CURVE_COLUMNS", "write_csv_atomic", "write_learning_curve_plot"]

CURVE_COLUMNS = ("round", "n_labeled", "accuracy", "macro_f1", "seconds")


def write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV file so that readers see either the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(rows)
        # mkstemp creates the file readable by its owner only, but outputs are shared files.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_learning_curve_plot(
    path: Path, curves: dict[str, list[dict[str, float]]], title: str
) -> None:
    """Plot accuracy and macro-F1 against labeled count, one line per curve, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (accuracy_axis, f1_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rows in curves.items():
        n_labeled = [row["n_labeled"] for row in rows]
        accuracy_axis.plot(n_labeled, [row["accuracy"] for row in rows], marker="o", markersize=3, label=name)
        f1_axis.plot(n_labeled, [row["macro_f1"] for row in rows], marker="o", markersize=3, label=name)
    for axis, metric in ((accuracy_axis, "test accuracy"), (f1_axis, "test macro-F1")):
        axis.set_xlabel("labeled rows")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(handle)
    try:
        figure.savefig(temp_name, dpi=110)
        os.replace(temp_name, path)
    finally:
        plt.close(figure)
        Path(temp_name).unlink(missing_ok=True)
