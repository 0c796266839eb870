"""The watcher's durable state: fired triggers, round requests, the source position and counters.

One SQLite file (WAL journaling, synchronous writes). A round request is
created together with the triggers that caused it, in one transaction, and a
trigger id is a primary key: a window read again after a restart finds its
triggers already claimed and starts no second round. A request records the
round index it must reach, so a retry after a failure or a restart resumes
towards the same round instead of adding one more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from al_ray.errors import ConfigError

__all__ = ["REQUEST_ABANDONED", "REQUEST_ENDED", "REQUEST_PENDING", "REQUEST_SUCCEEDED", "RoundRequest", "WatchState"]

logger = logging.getLogger(__name__)

REQUEST_PENDING = "pending"
REQUEST_SUCCEEDED = "succeeded"
REQUEST_ABANDONED = "abandoned"
"""Every attempt failed, up to ``watch.max_consecutive_failures``."""
REQUEST_ENDED = "ended"
"""The loop ran and stopped without a new round, e.g. because the pool was exhausted."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id INTEGER PRIMARY KEY AUTOINCREMENT,
    window_id TEXT NOT NULL UNIQUE,
    target_round INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    source_time_s REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS triggers (
    trigger_id TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    window_id TEXT NOT NULL,
    request_id INTEGER NOT NULL REFERENCES requests(request_id),
    figures TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class RoundRequest:
    """A round the watcher decided to start, and how its attempts went."""

    request_id: int
    window_id: str
    target_round: int
    """The run's round index this request completes."""
    status: str
    attempts: int
    last_error: str | None
    source_time_s: float
    """Time of the window that fired, in the source's clock."""
    next_attempt_at: float
    """Unix time of the next attempt while pending."""


class WatchState:
    """The watcher's state file.

    Parameters
    ----------
    path
        The SQLite file; missing parent folders are created.

    Raises
    ------
    ConfigError
        If the file cannot be created or opened.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: every transaction below is an explicit BEGIN IMMEDIATE ... COMMIT.
            self._connection = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA synchronous = FULL")
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._connection.execute(statement)
        except (OSError, sqlite3.Error) as error:
            raise ConfigError(
                f"cannot open the watcher's state file {self.path}: {error}; "
                "set monitoring.watch.state_path to a file in a writable folder"
            ) from error

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> WatchState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    # Triggers and round requests.

    def claim(
        self,
        window_id: str,
        fired: Sequence[tuple[str, str, dict[str, float], str]],
        target_round: int,
        source_time_s: float,
        *,
        next_attempt_at: float | None = None,
        meta: dict[str, object] | None = None,
    ) -> RoundRequest | None:
        """Record the triggers that fired on a window and a round request for them.

        ``fired`` contains ``(trigger_id, policy, figures, reason)`` per trigger.
        The first attempt is due at ``next_attempt_at`` (unix time, default now).
        ``meta`` keys (the source position after the window) are written in
        the same transaction, so a crash never leaves a claimed window unread
        or an unclaimed window marked as read. Returns the new request, or
        None when the window already has one (it was read before a restart),
        in which case nothing is written.
        """
        now = time.time()
        with self._transaction() as connection:
            existing = connection.execute("SELECT 1 FROM requests WHERE window_id = ?", (window_id,)).fetchone()
            ids = [trigger for trigger, *_ in fired]
            claimed = connection.execute(
                f"SELECT trigger_id FROM triggers WHERE trigger_id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
            if existing is not None or claimed:
                return None
            cursor = connection.execute(
                "INSERT INTO requests (window_id, target_round, status, attempts, source_time_s, next_attempt_at,"
                " created_at, updated_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?)",
                (
                    window_id, target_round, REQUEST_PENDING, source_time_s,
                    now if next_attempt_at is None else next_attempt_at, now, now,
                ),
            )
            request_id = int(cursor.lastrowid)
            connection.executemany(
                "INSERT INTO triggers (trigger_id, policy, window_id, request_id, figures, reason, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (trigger, policy, window_id, request_id, json.dumps(figures, sort_keys=True), reason, now)
                    for trigger, policy, figures, reason in fired
                ],
            )
            if meta:
                _upsert_meta(connection, meta)
        return self.request(request_id)

    def request_policies(self, request_id: int) -> list[str]:
        """Return the policies whose triggers made a request, in the order they were recorded."""
        rows = self._connection.execute(
            "SELECT policy FROM triggers WHERE request_id = ? ORDER BY rowid", (request_id,)
        ).fetchall()
        return [str(row[0]) for row in rows]

    def request(self, request_id: int) -> RoundRequest:
        row = self._connection.execute(
            "SELECT request_id, window_id, target_round, status, attempts, last_error, source_time_s, next_attempt_at"
            " FROM requests WHERE request_id = ?",
            (request_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no round request {request_id} in {self.path}")
        return RoundRequest(*row)

    def pending_request(self) -> RoundRequest | None:
        """Return the oldest request still pending, or None."""
        row = self._connection.execute(
            "SELECT request_id FROM requests WHERE status = ? ORDER BY request_id LIMIT 1", (REQUEST_PENDING,)
        ).fetchone()
        return None if row is None else self.request(int(row[0]))

    def requests(self) -> list[RoundRequest]:
        rows = self._connection.execute("SELECT request_id FROM requests ORDER BY request_id").fetchall()
        return [self.request(int(row[0])) for row in rows]

    def triggers(self) -> list[dict[str, object]]:
        """Return every claimed trigger, oldest first."""
        rows = self._connection.execute(
            "SELECT trigger_id, policy, window_id, request_id, figures, reason FROM triggers ORDER BY rowid"
        ).fetchall()
        return [
            {
                "trigger_id": trigger,
                "policy": policy,
                "window_id": window,
                "request_id": request,
                "figures": json.loads(figures),
                "reason": reason,
            }
            for trigger, policy, window, request, figures, reason in rows
        ]

    def record_failure(self, request_id: int, error: str, next_attempt_at: float, *, abandon: bool) -> RoundRequest:
        """Count a failed attempt; schedule the next one, or abandon the request."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE requests SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, status = ?,"
                " updated_at = ? WHERE request_id = ?",
                (error[:2000], next_attempt_at, REQUEST_ABANDONED if abandon else REQUEST_PENDING, time.time(), request_id),
            )
        return self.request(request_id)

    def finish(self, request_id: int, status: str, detail: str | None = None) -> RoundRequest:
        """Mark a request succeeded or ended, counting its last attempt; ``detail`` replaces its last error."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE requests SET attempts = attempts + 1, status = ?, last_error = COALESCE(?, last_error),"
                " updated_at = ? WHERE request_id = ?",
                (status, detail, time.time(), request_id),
            )
        return self.request(request_id)

    # Position, times and counters.

    def get(self, key: str) -> str | None:
        row = self._connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_float(self, key: str) -> float | None:
        value = self.get(key)
        return None if value is None else float(value)

    def set(self, values: dict[str, object]) -> None:
        """Write several keys in one transaction."""
        with self._transaction() as connection:
            _upsert_meta(connection, values)

    def increment(self, key: str, by: int = 1) -> int:
        """Add ``by`` to a counter and return its new value."""
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
                (key, str(by), by),
            )
            row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0])

    def counter(self, key: str) -> int:
        value = self.get(key)
        return 0 if value is None else int(value)


def _upsert_meta(connection: sqlite3.Connection, values: dict[str, object]) -> None:
    connection.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(key, str(value)) for key, value in values.items()],
    )
