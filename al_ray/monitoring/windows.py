"""Cut a stream of live rows into windows: every N rows, or every T seconds of row time.

A window keeps the rows' features and, when the stream carries them, the live
model's predictions and uncertainty for the same rows. Each window records
where it lies in the stream (``first_row`` and ``end_row``, counted from the
first row ever added), so a detection can be dated in rows.

Example::

    windows = CountWindow(1000)
    for batch in stream:
        for window in windows.add(batch):
            result = detector.check_window(window)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from al_ray.monitoring.config import WindowConfig
from al_ray.monitoring.errors import DriftError

__all__ = ["CountWindow", "TimeWindow", "Window", "make_window"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    """One window of live rows."""

    index: int
    """Position of the window in the stream, from 0."""

    features: np.ndarray
    """Rows of the window, shape ``(n_rows, n_features)``."""

    first_row: int
    """Stream position of the first row, counted from 0 over every row added."""

    end_row: int
    """Stream position one past the last row."""

    predictions: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    start_time: float | None = None
    """Time windows: start of the window's period, in the stream's seconds."""

    end_time: float | None = None
    """Time windows: end of the window's period (exclusive), in the stream's seconds."""

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def label(self) -> str:
        """Text naming the window, e.g. ``"window 3 (rows 3000-3999)"``."""
        text = f"window {self.index} (rows {self.first_row}-{self.end_row - 1}"
        if self.start_time is not None and self.end_time is not None:
            text += f", t {self.start_time:g}-{self.end_time:g} s"
        return text + ")"


class _Buffer:
    """Rows added but not yet dropped, with their optional predictions and uncertainty."""

    def __init__(self) -> None:
        self.features: np.ndarray | None = None
        self.predictions: np.ndarray | None = None
        self.uncertainty: np.ndarray | None = None
        self.times: np.ndarray | None = None
        self.first_row = 0
        self.has_predictions: bool | None = None
        self.has_uncertainty: bool | None = None

    def __len__(self) -> int:
        return 0 if self.features is None else int(self.features.shape[0])

    def append(self, features, predictions, uncertainty, times) -> int:
        """Add rows; return how many were added."""
        rows = np.asarray(features)
        if rows.ndim != 2:
            raise DriftError(f"live rows must be a 2-D array of shape (n_rows, n_features), got shape {rows.shape}.")
        n = rows.shape[0]
        if self.features is not None and rows.shape[1] != self.features.shape[1]:
            raise DriftError(
                f"live rows have {rows.shape[1]} features, but earlier rows of this stream had "
                f"{self.features.shape[1]}; every batch must have the same columns."
            )
        has_predictions = _consistent(self.has_predictions, predictions, "predictions")
        has_uncertainty = _consistent(self.has_uncertainty, uncertainty, "uncertainty")
        extra = {
            "predictions": None if predictions is None else _per_row(predictions, n, "predictions"),
            "uncertainty": None if uncertainty is None else _per_row(uncertainty, n, "uncertainty"),
            "times": None if times is None else _per_row(times, n, "timestamps"),
        }
        # Changed only after every check passed, so a rejected batch leaves the stream as it was.
        self.has_predictions, self.has_uncertainty = has_predictions, has_uncertainty
        self.features = rows if self.features is None else np.concatenate([self.features, rows])
        for name, values in extra.items():
            if values is not None:
                current = getattr(self, name)
                setattr(self, name, values if current is None else np.concatenate([current, values]))
        return n

    def take(self, start: int, stop: int) -> dict[str, np.ndarray | None]:
        """Return rows ``[start, stop)`` in stream positions."""
        local = slice(start - self.first_row, stop - self.first_row)
        return {
            "features": None if self.features is None else self.features[local],
            "predictions": None if self.predictions is None else self.predictions[local],
            "uncertainty": None if self.uncertainty is None else self.uncertainty[local],
        }

    def drop_before(self, position: int) -> None:
        """Forget the rows before stream position ``position``."""
        cut = max(0, min(position - self.first_row, len(self)))
        if cut == 0:
            return
        for name in ("features", "predictions", "uncertainty", "times"):
            values = getattr(self, name)
            if values is not None:
                setattr(self, name, values[cut:])
        self.first_row += cut


def _consistent(seen: bool | None, values, name: str) -> bool:
    present = values is not None
    if seen is not None and seen != present:
        raise DriftError(
            f"some batches of this stream carry {name} and others do not; pass {name} with every batch or with none."
        )
    return present


def _per_row(values, n_rows: int, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.shape[:1] != (n_rows,):
        raise DriftError(f"{name} must have one entry per live row ({n_rows}), got shape {array.shape}.")
    return array


class CountWindow:
    """Windows of ``size`` rows, a new one every ``step`` rows.

    With ``step`` equal to ``size`` (the default) windows follow each other
    without overlap. A smaller step gives overlapping windows, so drift is
    checked more often. A larger step leaves rows between windows unchecked.
    """

    def __init__(self, size: int, *, step: int | None = None) -> None:
        if size < 1:
            raise DriftError(f"a count window needs size >= 1, got {size}.")
        if step is not None and step < 1:
            raise DriftError(f"a count window needs step >= 1, got {step}.")
        self.size = size
        self.step = size if step is None else step
        self._buffer = _Buffer()
        self._next_start = 0
        self._rows_seen = 0
        self._emitted = 0

    @property
    def rows_seen(self) -> int:
        """Rows added so far."""
        return self._rows_seen

    def add(
        self,
        features: np.ndarray,
        *,
        predictions: np.ndarray | None = None,
        uncertainty: np.ndarray | None = None,
    ) -> list[Window]:
        """Add live rows; return the windows they complete, oldest first."""
        self._rows_seen += self._buffer.append(features, predictions, uncertainty, None)
        windows = []
        while self._rows_seen - self._next_start >= self.size:
            windows.append(self._window(self._next_start, self._next_start + self.size))
            self._next_start += self.step
        self._buffer.drop_before(self._next_start)
        return windows

    def flush(self) -> Window | None:
        """Return the rows of the unfinished window as a shorter window, or None when there are none."""
        if self._rows_seen <= self._next_start:
            return None
        window = self._window(self._next_start, self._rows_seen)
        self._next_start = self._rows_seen
        self._buffer.drop_before(self._next_start)
        return window

    def _window(self, start: int, stop: int) -> Window:
        rows = self._buffer.take(start, stop)
        window = Window(
            index=self._emitted,
            features=rows["features"],
            first_row=start,
            end_row=stop,
            predictions=rows["predictions"],
            uncertainty=rows["uncertainty"],
        )
        self._emitted += 1
        return window


class TimeWindow:
    """Windows of ``seconds`` of row time, aligned to the first row's timestamp.

    Window ``k`` contains the rows with timestamps in ``[t0 + k * seconds,
    t0 + (k + 1) * seconds)``. A window is complete when a row at or past its
    end arrives. A period without rows yields no window. A period with fewer
    rows than a drift check needs still yields one, and the detector rejects it.
    """

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise DriftError(f"a time window needs seconds > 0, got {seconds}.")
        self.seconds = float(seconds)
        self._buffer = _Buffer()
        self._origin: float | None = None
        self._last_time: float | None = None
        self._rows_seen = 0
        self._emitted = 0

    @property
    def rows_seen(self) -> int:
        """Rows added so far."""
        return self._rows_seen

    def add(
        self,
        features: np.ndarray,
        *,
        timestamps: np.ndarray,
        predictions: np.ndarray | None = None,
        uncertainty: np.ndarray | None = None,
    ) -> list[Window]:
        """Add live rows with their timestamps in seconds; return the windows they complete."""
        times = np.asarray(timestamps, dtype=np.float64)
        if times.ndim != 1 or not np.all(np.isfinite(times)):
            raise DriftError("timestamps must be a 1-D array of finite seconds, one per row.")
        previous = self._last_time if self._last_time is not None else -np.inf
        steps_back = np.flatnonzero(np.diff(np.concatenate([[previous], times])) < 0)
        if steps_back.size:
            raise DriftError(
                f"timestamps must not decrease, but row {self._rows_seen + int(steps_back[0])} of the stream is "
                "earlier than the row before it; sort the rows by time before adding them."
            )
        self._rows_seen += self._buffer.append(features, predictions, uncertainty, times)
        if times.size == 0:
            return []
        if self._origin is None:
            self._origin = float(times[0])
        self._last_time = float(times[-1])
        return self._complete_windows(until=self._last_time)

    def flush(self) -> Window | None:
        """Return the rows of the unfinished period as a window, or None when there are none."""
        windows = self._complete_windows(until=np.inf)
        return windows[0] if windows else None

    def _complete_windows(self, until: float) -> list[Window]:
        windows = []
        buffer = self._buffer
        while len(buffer) and buffer.times is not None and self._origin is not None:
            period = int((buffer.times[0] - self._origin) // self.seconds)
            start_time = self._origin + period * self.seconds
            end_time = start_time + self.seconds
            if until < end_time:
                break
            count = int(np.searchsorted(buffer.times, end_time, side="left"))
            rows = buffer.take(buffer.first_row, buffer.first_row + count)
            windows.append(
                Window(
                    index=self._emitted,
                    features=rows["features"],
                    first_row=buffer.first_row,
                    end_row=buffer.first_row + count,
                    predictions=rows["predictions"],
                    uncertainty=rows["uncertainty"],
                    start_time=start_time,
                    end_time=end_time,
                )
            )
            self._emitted += 1
            buffer.drop_before(buffer.first_row + count)
        return windows


def make_window(config: WindowConfig) -> CountWindow | TimeWindow:
    """Build the window that ``monitoring.drift.window`` describes."""
    if config.kind == "time" and config.seconds is not None:
        # WindowConfig rejects kind time without seconds, so this branch takes every time window.
        return TimeWindow(config.seconds)
    return CountWindow(config.size, step=config.step)
