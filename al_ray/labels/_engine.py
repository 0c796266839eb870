"""Open a SQLAlchemy engine for the label store from a URL or a file path.

For SQLite the engine sets four pragmas on every new connection:

- ``busy_timeout``, so that a second process waits for the write lock instead
  of failing at once.
- ``journal_mode=WAL``, so readers and one writer do not block each other.
- ``synchronous=FULL``, so a committed transaction survives a power loss and
  not only a killed process.
- ``foreign_keys=ON``, so an answer cannot name a row that has no task.

Python's ``sqlite3`` driver (before 3.12's ``autocommit`` attribute) does not
emit ``BEGIN`` before a ``SELECT``, so two reads in one SQLAlchemy transaction
could see different data. The engine therefore switches the driver's own
transaction handling off and emits ``BEGIN`` itself, as SQLAlchemy's SQLite
dialect documentation recommends. Write transactions use ``BEGIN IMMEDIATE``:
a deferred transaction that reads and then writes can fail with "database is
locked" without waiting for the busy timeout when another process committed
in between.

On PostgreSQL every write transaction first takes one transaction-level
advisory lock, so writes run one at a time as they do on SQLite. Code that
reads, decides and then writes (an answer that must not duplicate another, a
task that must not be leased twice) is then correct under PostgreSQL's default
READ COMMITTED isolation without retries. Waiting for the lock is bounded by the
same busy timeout, through ``lock_timeout``. Readers take no lock.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from al_ray.errors import LabelStoreError

__all__ = ["StoreEngines", "describe_url", "resolve_url"]

_BEGIN_OPTION = "al_ray_sqlite_begin"
_WRITE_LOCK_OPTION = "al_ray_postgresql_write_lock"

# Key of the PostgreSQL advisory lock that serializes writes. Advisory locks
# are per database, so two label stores in different schemas of one database
# also take turns.
_WRITE_LOCK_KEY = zlib.crc32(b"al_ray.label_store.write")


def resolve_url(url_or_path: str | os.PathLike[str]) -> sa.URL:
    """Return the SQLAlchemy URL for a URL string or a plain file path.

    A string containing ``"://"`` is parsed as a URL. Anything else is a path
    to a SQLite file.
    """
    if isinstance(url_or_path, os.PathLike):
        return _sqlite_file_url(Path(url_or_path))
    if not isinstance(url_or_path, str):
        raise LabelStoreError(
            f"The label store location must be a SQLAlchemy URL or a file path, got "
            f"{url_or_path!r} of type {type(url_or_path).__name__}. "
            "Pass for example 'runs/mnist/labels.db' or 'sqlite:///runs/mnist/labels.db'."
        )
    if not url_or_path.strip():
        raise LabelStoreError(
            "The label store location is empty. "
            "Pass a file path such as 'runs/mnist/labels.db' or a SQLAlchemy URL."
        )
    if "://" not in url_or_path:
        return _sqlite_file_url(Path(url_or_path))
    try:
        url = sa.make_url(url_or_path)
    except sa.exc.ArgumentError as error:
        raise LabelStoreError(
            f"Invalid label store URL {url_or_path!r}: {error}. "
            "Use 'sqlite:///path/to/labels.db' or a plain file path."
        ) from error
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or url.query.get("mode") == "memory":
            raise LabelStoreError(
                f"The label store URL {url_or_path!r} names an in-memory SQLite database, "
                "which loses every label when the process ends. "
                "Use a file, for example 'sqlite:///runs/mnist/labels.db'."
            )
    return url


def _sqlite_file_url(path: Path) -> sa.URL:
    return sa.URL.create("sqlite", database=str(path.expanduser()))


def describe_url(url: sa.URL) -> str:
    """Return the file path of a SQLite URL, or the URL with its password hidden."""
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return url.render_as_string(hide_password=True)


class StoreEngines:
    """The engine for reads and the engine for writes, which share one pool.

    On SQLite the write engine starts transactions with ``BEGIN IMMEDIATE``;
    on PostgreSQL it takes the write lock first. On other databases both are
    the same engine.
    """

    def __init__(self, url: sa.URL, busy_timeout_s: float) -> None:
        self.url = url
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.is_postgresql = url.get_backend_name() == "postgresql"
        where = describe_url(url)
        # A "file:" URI (uri=true) is passed to SQLite as is, so it is not a folder path.
        if self.is_sqlite and url.query.get("uri") != "true":
            _create_parent_folder(where)
        try:
            # A pooled server connection may have been closed by the server
            # meanwhile; a file connection cannot.
            engine = sa.create_engine(url, pool_pre_ping=not self.is_sqlite)
        except (ImportError, sa.exc.ArgumentError) as error:
            raise LabelStoreError(
                f"Cannot create a database engine for label store {where}: {error}. "
                "Install the database driver the URL names, or use a SQLite file path."
            ) from error
        if self.is_sqlite:
            _configure_sqlite(engine, busy_timeout_s, where)
            self.write: Engine = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        elif self.is_postgresql:
            _configure_postgresql(engine, busy_timeout_s)
            self.write = engine.execution_options(**{_WRITE_LOCK_OPTION: True})
        else:
            self.write = engine
        self.read: Engine = engine

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.read.dispose()


def _create_parent_folder(path: str) -> None:
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LabelStoreError(
            f"Cannot create the folder {str(parent)!r} for label store {path!r}: {error}. "
            "Choose a path in a writable folder."
        ) from error


def _configure_sqlite(engine: Engine, busy_timeout_s: float, where: str) -> None:
    busy_timeout_ms = int(busy_timeout_s * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" listener below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            journal_mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(journal_mode).lower() != "wal":
                raise LabelStoreError(
                    f"Label store {where!r} cannot use WAL journal mode (SQLite kept "
                    f"{journal_mode!r}); WAL does not work on network file systems. "
                    "Put the store on a local disk."
                )
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _configure_postgresql(engine: Engine, busy_timeout_s: float) -> None:
    lock_timeout_ms = max(1, int(busy_timeout_s * 1000))

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if not connection.get_execution_options().get(_WRITE_LOCK_OPTION):
            return
        # One round trip: the timeout is set transaction-locally (is_local
        # true) before the lock is requested, and both end with the transaction.
        connection.exec_driver_sql(
            f"SELECT set_config('lock_timeout', '{lock_timeout_ms}', true), "
            f"pg_advisory_xact_lock({_WRITE_LOCK_KEY})"
        )
