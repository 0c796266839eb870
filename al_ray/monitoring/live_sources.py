"""Live traffic for the watcher, one window at a time.

Two sources share one small interface, :class:`LiveSource`:

- :class:`ReplaySource` replays a labeled dataset as live traffic, in file
  order (a time-ordered stream such as elec2) or in a seeded shuffled order
  (the same rows with no drift). It carries every row's ground truth, which
  the watcher uses only to report the live model's accuracy on each window before
  any round trains on it (prequential evaluation), never to decide.
- :class:`FeedbackSource` reads the served rows that the router stored as
  uncertain (``serving.feedback.path``), in production.

Neither source scores rows: the watcher computes predictions and margin
uncertainty of every window with the live model.

A source position is an integer the watcher keeps in its state file: the
replay position of the next window, or the last feedback store id read. Reading
the same position again returns the same count window, so a watcher restarted
after a crash sees the windows it had not finished.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from al_ray.data import LabeledData, Split
from al_ray.errors import ConfigError
from al_ray.seeding import derive_seed

__all__ = ["FeedbackSource", "LiveSource", "LiveWindow", "ReplaySource", "feedback_identity", "replay_identity", "source_identity"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class LiveWindow:
    """One window of live rows.

    ``features`` is ``(n_rows, n_features)``. ``row_ids`` has one entry per
    row, -1 for a served row without one. ``labels`` contains class indices and
    is set by a replay only.
    """

    window_id: str
    features: np.ndarray
    time_s: float
    """Time of the window's last row, in the source's clock (see :attr:`LiveSource.clock`)."""
    next_position: int
    """Source position of the window after this one."""
    end_position: int
    """Source position just past this window's last row; above ``next_position`` when windows overlap."""
    row_ids: np.ndarray | None = None
    labels: np.ndarray | None = None


class LiveSource(Protocol):
    """A source of live windows."""

    clock: str
    """``"wall"`` (unix seconds) or ``"replay"`` (seconds of replay time)."""

    def start_position(self) -> int:
        """Return the position of the first window to watch."""
        ...

    def read(self, position: int) -> LiveWindow | None:
        """Return the window at ``position``, or None while no full window is available."""
        ...

    def finished(self, position: int) -> bool:
        """Return True when no window will ever come after ``position`` (the end of a replay)."""
        ...

    def recent_features(self, until: int, n_rows: int) -> np.ndarray:
        """Return the features of the last ``n_rows`` rows before position ``until``, oldest first."""
        ...

    def describe(self) -> str:
        ...


def source_identity(source: LiveSource) -> str:
    """Return what a stored source position belongs to: ``source.identity``, else its description."""
    identity = getattr(source, "identity", None)
    return identity if isinstance(identity, str) and identity else source.describe()


def replay_identity(data: LabeledData, order: str) -> str:
    """Return the identity of a replay of ``data`` in ``order`` (``file`` or ``shuffled``)."""
    return f"replay:{data.name}:{len(data)} rows:{order}"


def feedback_identity(path: str | Path) -> str:
    """Return the identity of a feedback source reading the store at ``path``."""
    return f"feedback:{Path(path).expanduser().resolve()}"


class ReplaySource:
    """Replay a labeled dataset as live traffic, window by window.

    Parameters
    ----------
    data
        The dataset; its row order is the file order.
    window_kind, window_size, window_step, window_seconds
        Count windows of ``window_size`` rows starting every ``window_step``
        rows, or time windows of ``window_seconds`` of replay time.
    order
        ``"file"`` or ``"shuffled"`` (a permutation seeded from ``seed``).
    seconds_per_row
        Replay time between successive rows; row ``i`` arrives at ``i * seconds_per_row``.
    initial_windows
        Windows at the start of the replay whose rows train the first model.
        The watch starts after them.
    test_share
        Share of rows held out as the loop's test set, chosen per row from ``seed``.
    seed
        The run's root seed.

    The rows after the last full window are not replayed.
    """

    clock = "replay"

    def __init__(
        self,
        data: LabeledData,
        *,
        window_kind: str = "count",
        window_size: int = 1000,
        window_step: int | None = None,
        window_seconds: float | None = None,
        order: str = "file",
        seconds_per_row: float = 1.0,
        initial_windows: int = 1,
        test_share: float = 0.1,
        seed: int = 0,
    ) -> None:
        if not 0 < test_share < 1:
            raise ConfigError(f"the replay's test share must be in (0, 1), got {test_share}; set data.test_size")
        self.data = data
        self.window_kind = window_kind
        self.window_size = int(window_size)
        self.window_step = int(window_step or window_size)
        self.window_seconds = window_seconds
        self.order = order
        self.seconds_per_row = float(seconds_per_row)
        n_rows = len(data)
        if order == "shuffled":
            self._positions = np.random.default_rng(derive_seed(seed, "replay-order")).permutation(n_rows)
        else:
            self._positions = np.arange(n_rows)
        # One draw per dataset row, independent of the replay order and of how far it got.
        self._test_mask = np.random.default_rng(derive_seed(seed, "replay-test")).random(n_rows) < test_share
        self.initial_end = self._initial_end(initial_windows)
        if self.initial_end >= n_rows:
            raise ConfigError(
                f"the {initial_windows} initial replay windows cover all {n_rows} rows of {data.name!r}, "
                "leaving nothing to watch; lower monitoring.watch.source.initial_windows or the window size"
            )

    def describe(self) -> str:
        return f"replay of {self.data.name} ({len(self.data)} rows, {self.order} order)"

    @property
    def identity(self) -> str:
        """The kind, dataset and order: what a replay position counts rows of."""
        return replay_identity(self.data, self.order)

    @property
    def positions(self) -> np.ndarray:
        """Array position in ``data`` of each replayed row, in replay order."""
        return self._positions

    # Windows.

    def _row_time(self, position: int) -> float:
        return position * self.seconds_per_row

    def _initial_end(self, initial_windows: int) -> int:
        if self.window_kind == "time":
            limit = initial_windows * float(self.window_seconds or 0.0)
            return min(len(self.data), math.ceil(limit / self.seconds_per_row))
        return min(len(self.data), initial_windows * self.window_size)

    def start_position(self) -> int:
        return self.initial_end

    def _bounds(self, position: int) -> tuple[int, int, int]:
        """Return (end, next position, rows needed) of the window at ``position``."""
        n_rows = len(self.data)
        if self.window_kind == "time":
            seconds = float(self.window_seconds or 0.0)
            # Windows are aligned on multiples of window_seconds of replay time.
            window_index = math.floor(self._row_time(position) / seconds)
            end = min(n_rows, math.ceil((window_index + 1) * seconds / self.seconds_per_row))
            end = max(end, position + 1)
            return end, end, end - position
        end = position + self.window_size
        return end, position + self.window_step, self.window_size

    def read(self, position: int) -> LiveWindow | None:
        end, next_position, needed = self._bounds(position)
        if end > len(self.data) or needed <= 0:
            return None
        rows = self._positions[position:end]
        return LiveWindow(
            window_id=f"replay-{self.order}:rows-{position}-{end}",
            features=self.data.features[rows],
            time_s=self._row_time(end - 1),
            next_position=next_position,
            end_position=end,
            row_ids=self.data.row_ids[rows],
            labels=self.data.labels[rows],
        )

    def finished(self, position: int) -> bool:
        end, _, _ = self._bounds(position)
        return end > len(self.data)

    def recent_features(self, until: int, n_rows: int) -> np.ndarray:
        return self.data.features[self._positions[max(0, until - n_rows) : until]]

    # What the loop trains on.

    def version_time_s(self) -> float:
        """Return the replay time of the first model: the end of the initial windows."""
        return self._row_time(self.initial_end - 1)

    def split(self, seen_until: int) -> Split:
        """Return the loop's split once the replay has shown the rows before ``seen_until``.

        The initial labeled set is the initial windows' rows, the pool every
        row seen since, and the test set the held-out rows among those seen
        (never queried, never trained on). Rows not yet replayed are in none
        of the three, so no round can query or test on the future.
        """
        seen = self._positions[: max(seen_until, self.initial_end)]
        held_out = self._test_mask[seen]
        initial = self._positions[: self.initial_end]
        initial = initial[~self._test_mask[initial]]
        later = self._positions[self.initial_end : max(seen_until, self.initial_end)]
        later = later[~self._test_mask[later]]
        return Split(
            initial_labeled=_sorted_ids(self.data.row_ids[initial]),
            pool=_sorted_ids(self.data.row_ids[later]),
            test=_sorted_ids(self.data.row_ids[seen[held_out]]),
        )


class FeedbackSource:
    """Read the uncertain served rows from the serving feedback store.

    Count windows are ``window_size`` rows in store order. Time windows close
    ``window_seconds`` after the watcher first saw a row of the window.

    NOTE: a time window is cut by when the watcher read its rows, because
    the store's reader returns no arrival times. A restart may cut an
    unfinished window differently.
    """

    clock = "wall"

    def __init__(
        self,
        path: str,
        *,
        window_kind: str = "count",
        window_size: int = 1000,
        window_step: int | None = None,
        window_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window_kind == "count" and window_step not in (None, window_size):
            raise ConfigError(
                f"the feedback source reads windows that do not overlap; remove monitoring.drift.window.step "
                f"({window_step}) or set it to window.size ({window_size})"
            )
        from al_ray.serving.feedback import UncertainRowStore

        self.path = path
        self._store = UncertainRowStore(path)
        self.window_kind = window_kind
        self.window_size = int(window_size)
        self.window_seconds = window_seconds
        self._clock = clock
        self._opened_at: dict[int, float] = {}

    def describe(self) -> str:
        return f"served uncertain rows in {self.path}"

    @property
    def identity(self) -> str:
        """The kind and the store's absolute path: what a feedback position counts store ids of."""
        return feedback_identity(self.path)

    def start_position(self) -> int:
        return 0

    def read(self, position: int) -> LiveWindow | None:
        from al_ray.serving.errors import ServingError

        limit = self.window_size if self.window_kind == "count" else None
        try:
            rows = self._store.read_since(position, limit=limit)
        except ServingError as error:
            # The read mixed rows of different widths. The first run of one width
            # becomes the window, so the watcher checks or rejects it and moves on.
            logger.warning("feedback store %s: %s; reading the rows one by one", self.path, error)
            rows = self._read_one_width(position, limit)
        if len(rows.ids) == 0:
            return None
        now = self._clock()
        if self.window_kind == "count":
            if len(rows.ids) < self.window_size:
                return None
        else:
            opened = self._opened_at.setdefault(position, now)
            if now - opened < float(self.window_seconds or 0.0):
                return None
            self._opened_at.pop(position, None)
        first, last = int(rows.ids[0]), int(rows.ids[-1])
        row_ids = np.array([-1 if row_id is None else row_id for row_id in rows.row_ids], dtype=np.int64)
        return LiveWindow(
            window_id=f"feedback:ids-{first}-{last}",
            features=rows.features,
            time_s=now,
            next_position=last,
            end_position=last,
            row_ids=row_ids,
        )

    def _read_one_width(self, position: int, limit: int | None):
        first = self._store.read_since(position, limit=1)
        width = first.features.shape[1]
        parts = [first]
        cursor = int(first.ids[-1])
        while limit is None or len(parts) < limit:
            following = self._store.read_since(cursor, limit=1)
            if len(following.ids) == 0 or following.features.shape[1] != width:
                break
            parts.append(following)
            cursor = int(following.ids[-1])
        from al_ray.serving.feedback import UncertainRows

        return UncertainRows(
            ids=np.concatenate([part.ids for part in parts]),
            row_ids=[row_id for part in parts for row_id in part.row_ids],
            features=np.concatenate([part.features for part in parts]),
            versions=[version for part in parts for version in part.versions],
        )

    def finished(self, position: int) -> bool:
        return False

    def recent_features(self, until: int, n_rows: int) -> np.ndarray:
        # Store ids increase by one per row, so the n_rows ids up to `until` are the last n_rows rows.
        rows = self._store.read_since(max(0, until - n_rows), limit=n_rows)
        return rows.features[rows.ids <= until]

    def close(self) -> None:
        self._store.close()


def _sorted_ids(row_ids: np.ndarray) -> np.ndarray:
    ids = np.sort(np.asarray(row_ids, dtype=np.int64))
    ids.flags.writeable = False
    return ids
