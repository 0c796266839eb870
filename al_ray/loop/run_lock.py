"""One loop at a time per label store.

Two loops on one store (a scheduled round firing while the last one still
runs, or a second `al-ray run --resume` in another terminal) would both
complete the same round and register its model twice. The loop therefore
holds a lock for the whole run:

- a SQLite store: an exclusive ``flock`` on ``<store file>.lock`` beside it;
- a PostgreSQL store: a session-level advisory lock keyed by the store's
  schema, held on a connection of its own.

Both are released by the operating system or the server when the process
ends, also after SIGKILL, so a killed run never leaves a stale lock behind.
The lock file holds the holder's host and pid, only to name it in the error.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path

import sqlalchemy as sa

from al_ray.errors import ResumeError
from al_ray.labels._engine import resolve_url

__all__ = ["RunInProgressError", "RunLock"]

logger = logging.getLogger(__name__)

# First key of the two-key advisory lock. The second key is a hash of the
# schema name, so stores in different schemas of one database lock apart.
# The value is arbitrary but differs from the store's write-lock key.
_RUN_LOCK_CLASS = 0x616C72


class RunInProgressError(ResumeError):
    """Another loop is running on the same label store."""


class RunLock(contextlib.AbstractContextManager):
    """Hold the run lock of the label store at ``location`` while in the ``with`` block."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        self._url = resolve_url(location)
        self._location = location
        self._file = None
        self._engine: sa.Engine | None = None
        self._connection: sa.Connection | None = None

    def __enter__(self) -> RunLock:
        backend = self._url.get_backend_name()
        if backend == "sqlite":
            self._lock_file(Path(self._url.database))
        elif backend == "postgresql":
            self._lock_postgres()
        else:
            # TODO: other databases have no lock here; one loop per store is then up to the user.
            logger.warning("no run lock for %s stores; run one loop per store at a time", backend)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _lock_file(self, database: Path) -> None:
        path = database.with_name(database.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunInProgressError(
                f"another al-ray run is using the label store {database} ({holder}). "
                "Wait for it to end, or stop it; then run again (a scheduled round: "
                "--more-rounds continues where it stopped)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"host {socket.gethostname()}, pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def _lock_postgres(self) -> None:
        self._engine = sa.create_engine(self._url, poolclass=sa.pool.NullPool)
        self._connection = self._engine.connect()
        got = self._connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key, hashtext(current_schema()))"), {"key": _RUN_LOCK_CLASS}
        ).scalar()
        # A session-level lock outlives this commit, which only ends the query's transaction.
        self._connection.commit()
        if not got:
            where = self._url.render_as_string(hide_password=True)
            self.__exit__(None, None, None)
            raise RunInProgressError(
                f"another al-ray run is using the label store {where}. Wait for it to end, "
                "or stop it; then run again (a scheduled round: --more-rounds continues where it stopped)"
            )
