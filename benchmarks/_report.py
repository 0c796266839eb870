"""Write benchmark outputs: the machine line, atomic text and PNG files, and RESULTS.md sections.

A generated section of ``benchmarks/RESULTS.md`` sits between two marker
comments, ``<!-- generated: NAME start -->`` and ``<!-- generated: NAME end -->``.
:func:`replace_section` rewrites only the text between them, so a reading
written by hand below the end marker survives a rerun. A table without
markers yet gets them, with its section, at the end of the file.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "RESULTS_MD",
    "load_average",
    "machine_line",
    "replace_section",
    "save_figure",
    "section_markers",
    "write_text_atomic",
]

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"
GIB = 2**30


def load_average() -> float:
    """Return the 1-minute load average, which counts other work on the machine as well as ours."""
    return os.getloadavg()[0]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_line(distributions: Sequence[str] = ("ray", "numpy", "scikit-learn")) -> str:
    """Return cores, architecture, RAM, Python, the given packages' versions and today's date."""
    memory_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / GIB
    versions = ", ".join(f"{name} {_version(name)}" for name in distributions)
    return (
        f"{os.cpu_count()} cores ({platform.machine()}), {memory_gib:.0f} GiB RAM, no GPU, "
        f"Python {platform.python_version()}, {versions}; run on {datetime.date.today().isoformat()}"
    )


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        # mkstemp creates the file readable by its owner only, but outputs are shared files.
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def save_figure(figure, path: Path) -> None:
    """Save a matplotlib figure as a PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    try:
        _write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))
    finally:
        plt.close(figure)


def section_markers(name: str) -> tuple[str, str]:
    return f"<!-- generated: {name} start -->", f"<!-- generated: {name} end -->"


def replace_section(name: str, body: str, path: Path = RESULTS_MD, heading: str | None = None) -> None:
    """Replace the text between ``name``'s markers in ``path`` with ``body``, atomically.

    Without markers in the file, append ``heading`` (a markdown heading line)
    and the marked body at the end. Raises ValueError when the markers appear
    more than once or out of order, because then the section to replace is
    ambiguous.
    """
    start, end = section_markers(name)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    starts = [match.start() for match in re.finditer(re.escape(start), text)]
    ends = [match.start() for match in re.finditer(re.escape(end), text)]
    block = f"{start}\n{body.strip()}\n{end}"
    if not starts and not ends:
        title = f"{heading.rstrip()}\n\n" if heading else ""
        updated = f"{text.rstrip()}\n\n{title}{block}\n"
    elif len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0]:
        updated = text[: starts[0]] + block + text[ends[0] + len(end) :]
    else:
        raise ValueError(
            f"{path} has {len(starts)} start and {len(ends)} end markers for section {name!r}; "
            f"expected one {start!r} followed by one {end!r}. Fix the markers by hand and rerun"
        )
    write_text_atomic(path, updated)
