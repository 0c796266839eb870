"""Memory measurements for the benchmarks: a sampling thread and the machine's free memory.

The sampler reads, every ``interval_s``, the resident set size (RSS) of one
process (the driver) and of its whole process tree. For a Ray driver the tree
contains every process of the local Ray session: ``ray.init`` starts the GCS and
the raylet as the driver's children, and the raylet starts the workers.

Summed RSS counts a shared page once per process that maps it, and Ray's
object store is shared memory that the raylet and every reading worker map.
The tree figure is therefore the sum of proportional set sizes (PSS), which
splits each shared page among its sharers, so the tree's PSS is close to the
memory it occupies.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Self

import psutil

__all__ = ["MemorySampler", "MemoryWindow", "available_bytes", "total_bytes"]

MIB = 2**20


def available_bytes() -> int:
    """Return the kernel's estimate of memory available to new processes (MemAvailable)."""
    return int(psutil.virtual_memory().available)


def total_bytes() -> int:
    return int(psutil.virtual_memory().total)


@dataclass
class MemoryWindow:
    """The peaks seen between :meth:`MemorySampler.window` opening and closing, in bytes."""

    driver_rss: int = 0
    tree_pss: int = 0
    tree_rss: int = 0
    samples: int = 0

    def record(self, driver_rss: int, tree_pss: int, tree_rss: int) -> None:
        self.driver_rss = max(self.driver_rss, driver_rss)
        self.tree_pss = max(self.tree_pss, tree_pss)
        self.tree_rss = max(self.tree_rss, tree_rss)
        self.samples += 1


@dataclass
class _Series:
    """Every sample since :meth:`MemorySampler.start`: seconds, driver RSS and tree PSS in bytes."""

    seconds: list[float] = field(default_factory=list)
    driver_rss: list[int] = field(default_factory=list)
    tree_pss: list[int] = field(default_factory=list)


class MemorySampler:
    """Sample a process and its descendants in a daemon thread until :meth:`stop`.

    ``with sampler.window() as peak:`` collects the peaks of the samples taken
    inside the block. One more sample is taken as the block ends, so a short
    block still gets a reading. ``keep_series=True`` also keeps every sample
    for a plot of memory over time.
    """

    def __init__(self, pid: int | None = None, interval_s: float = 0.1, keep_series: bool = False) -> None:
        self.process = psutil.Process(pid if pid is not None else os.getpid())
        self.interval_s = interval_s
        self.series = _Series() if keep_series else None
        self._windows: list[MemoryWindow] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def start(self) -> Self:
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def window(self) -> _WindowContext:
        return _WindowContext(self)

    def sample(self) -> tuple[int, int, int]:
        """Take one sample now: ``(driver RSS, tree PSS, tree RSS)`` in bytes."""
        driver_rss = self.process.memory_info().rss
        tree_pss = 0
        tree_rss = 0
        for process in [self.process, *self._descendants()]:
            try:
                info = process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                # A worker that exits between listing and reading has no memory left to count.
                continue
            tree_pss += info.pss
            tree_rss += info.rss
        with self._lock:
            for open_window in self._windows:
                open_window.record(driver_rss, tree_pss, tree_rss)
            if self.series is not None:
                self.series.seconds.append(time.perf_counter() - self._started)
                self.series.driver_rss.append(driver_rss)
                self.series.tree_pss.append(tree_pss)
        return driver_rss, tree_pss, tree_rss

    def _descendants(self) -> list[psutil.Process]:
        try:
            return self.process.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def _open(self) -> MemoryWindow:
        opened = MemoryWindow()
        with self._lock:
            self._windows.append(opened)
        self.sample()
        return opened

    def _close(self, closing: MemoryWindow) -> None:
        self.sample()
        with self._lock:
            self._windows.remove(closing)


class _WindowContext:
    def __init__(self, sampler: MemorySampler) -> None:
        self.sampler = sampler
        self.peak: MemoryWindow | None = None

    def __enter__(self) -> MemoryWindow:
        self.peak = self.sampler._open()
        return self.peak

    def __exit__(self, *exc_info: object) -> None:
        if self.peak is not None:
            self.sampler._close(self.peak)
