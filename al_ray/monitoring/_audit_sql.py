"""The audit log in a database table, through SQLAlchemy (SQLite by default, PostgreSQL by URL).

Appends from several processes must not fork the chain, so reading the last
entry and inserting the next one happen in one write transaction that no
other writer interleaves with:

- SQLite: the transaction starts with ``BEGIN IMMEDIATE``, which takes the
  database's write lock before the read. Other writers wait for it up to the
  busy timeout.
- PostgreSQL: the transaction first takes a transaction-level advisory lock.
- Any database: ``seq``, ``prev_hash`` and ``key`` are unique, so two writers
  that still raced would make one insert fail. That append is retried from
  the read of the last entry.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from al_ray.errors import AuditError
from al_ray.monitoring._audit_chain import (
    AuditEntry,
    AuditProblem,
    AuditRecord,
    build_entries,
    canonical_json,
)

__all__ = ["SqlAuditStore", "resolve_sql_url"]

logger = logging.getLogger(__name__)

_BEGIN_OPTION = "al_ray_audit_begin"
_LOCK_OPTION = "al_ray_audit_lock"
# Advisory locks are per database, so audit logs in two schemas of one database take turns.
_LOCK_KEY = zlib.crc32(b"al_ray.audit.append")
_MAX_ATTEMPTS = 20
_KEY_CHUNK = 500

_metadata = sa.MetaData()
audit_table = sa.Table(
    "audit_log",
    _metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("unix_time", sa.Double, nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False, index=True),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False, index=True),
    sa.Column("key", sa.Text, nullable=True, unique=True),
    # Canonical JSON text, so reading it back gives the exact value that was hashed.
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
)


def resolve_sql_url(location: str | Path) -> sa.URL:
    """Return the SQLAlchemy URL of a URL string, or of a SQLite file path."""
    if isinstance(location, Path) or "://" not in location:
        return sa.URL.create("sqlite", database=str(Path(location).expanduser()))
    try:
        url = sa.make_url(location)
    except (sa.exc.ArgumentError, ValueError) as error:
        raise AuditError(
            f"invalid audit log URL {location!r}: {error}; use a file path, 'sqlite:///path/audit.db' "
            "or a postgresql+psycopg:// URL"
        ) from None
    if url.get_backend_name() == "sqlite" and (url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"):
        raise AuditError(
            f"the audit log URL {location!r} names an in-memory SQLite database, which is lost when the "
            "process ends; use a file such as 'sqlite:///runs/mnist/audit.db'"
        )
    return url


class SqlAuditStore:
    """Audit entries in the ``audit_log`` table of one database."""

    def __init__(self, url: sa.URL, busy_timeout_s: float) -> None:
        self.url = url
        backend = url.get_backend_name()
        self.where = url.database if backend == "sqlite" and url.database else url.render_as_string(hide_password=True)
        if backend == "sqlite" and url.query.get("uri") != "true":
            try:
                Path(self.where).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise AuditError(
                    f"cannot create the folder of audit log {self.where!r}: {error}; choose a path in a writable folder"
                ) from None
        try:
            engine = sa.create_engine(url, pool_pre_ping=backend != "sqlite")
        except (ImportError, sa.exc.ArgumentError) as error:
            raise AuditError(
                f"cannot create a database engine for audit log {self.where!r}: {error}; "
                "install the driver the URL names, or use a SQLite file path"
            ) from None
        if backend == "sqlite":
            _configure_sqlite(engine, busy_timeout_s)
            self._write = engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
        elif backend == "postgresql":
            _configure_postgresql(engine, busy_timeout_s)
            self._write = engine.execution_options(**{_LOCK_OPTION: True})
        else:
            self._write = engine
        self._read: Engine = engine
        try:
            with self._write.begin() as connection:
                _metadata.create_all(connection, checkfirst=True)
        except sa.exc.DBAPIError as error:
            engine.dispose()
            raise AuditError(
                f"cannot open audit log {self.where!r}: {error.orig}; check that the path is in a folder this "
                "user can write, or that the database server is reachable"
            ) from None

    def close(self) -> None:
        self._read.dispose()

    def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        """Chain and insert ``records`` in one transaction; skip records whose key is stored."""
        attempt = 0
        while True:
            attempt += 1
            try:
                with self._transaction("append to", self._write) as connection:
                    return self._append(connection, records)
            except _Conflict as conflict:
                if attempt >= _MAX_ATTEMPTS:
                    raise AuditError(
                        f"appending to audit log {self.where!r} conflicted with other writers {attempt} times "
                        f"in a row: {conflict.error}; retry later"
                    ) from None
                logger.debug("audit append conflicted (attempt %d), retrying: %s", attempt, conflict.error)
                time.sleep(min(0.5, 0.01 * attempt))

    def _append(self, connection: sa.Connection, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        last = connection.execute(
            sa.select(audit_table.c.seq, audit_table.c.entry_hash).order_by(audit_table.c.seq.desc()).limit(1)
        ).first()
        keys = sorted({record.key for record in records if record.key is not None})
        stored_keys: set[str] = set()
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = keys[start : start + _KEY_CHUNK]
            stored_keys.update(
                connection.execute(sa.select(audit_table.c.key).where(audit_table.c.key.in_(chunk))).scalars()
            )
        fresh = []
        for record in records:
            if record.key is not None:
                if record.key in stored_keys:
                    continue
                stored_keys.add(record.key)
            fresh.append(record)
        entries = build_entries(fresh, (int(last.seq), last.entry_hash) if last is not None else None)
        if entries:
            connection.execute(sa.insert(audit_table), [_row(entry) for entry in entries])
        return entries

    def iter_entries(self) -> Iterator[AuditEntry | AuditProblem]:
        """Yield every entry in seq order, in one read transaction."""
        statement = sa.select(audit_table).order_by(audit_table.c.seq)
        with self._transaction("read", self._read) as connection:
            for row in connection.execution_options(yield_per=1000).execute(statement):
                yield _entry(row)

    def tail(self, count: int) -> list[AuditEntry | AuditProblem]:
        """Return the newest ``count`` entries, oldest first."""
        statement = sa.select(audit_table).order_by(audit_table.c.seq.desc()).limit(count)
        with self._transaction("read", self._read) as connection:
            rows = connection.execute(statement).all()
        return [_entry(row) for row in reversed(rows)]

    def last(self) -> AuditEntry | None:
        statement = sa.select(audit_table).order_by(audit_table.c.seq.desc()).limit(1)
        with self._transaction("read", self._read) as connection:
            row = connection.execute(statement).first()
        if row is None:
            return None
        entry = _entry(row)
        return entry if isinstance(entry, AuditEntry) else None

    def query(
        self,
        *,
        kinds: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
        subject: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> tuple[list[AuditEntry], list[AuditProblem]]:
        """Return the matching entries, and the matching rows that could not be read."""
        statement = sa.select(audit_table).order_by(audit_table.c.seq)
        if kinds:
            statement = statement.where(audit_table.c.kind.in_(list(kinds)))
        if since is not None:
            statement = statement.where(audit_table.c.unix_time >= since)
        if until is not None:
            statement = statement.where(audit_table.c.unix_time < until)
        if subject is not None:
            statement = statement.where(audit_table.c.subject == subject)
        if actor is not None:
            statement = statement.where(audit_table.c.actor == actor)
        if limit is not None:
            # The newest `limit` matches, returned oldest first.
            statement = statement.order_by(None).order_by(audit_table.c.seq.desc()).limit(limit)
        with self._transaction("read", self._read) as connection:
            rows = connection.execute(statement).all()
        items = [_entry(row) for row in rows]
        entries = [item for item in items if isinstance(item, AuditEntry)]
        unreadable = [item for item in items if isinstance(item, AuditProblem)]
        return sorted(entries, key=lambda entry: entry.seq), unreadable

    @contextmanager
    def _transaction(self, action: str, engine: Engine) -> Iterator[sa.Connection]:
        try:
            with engine.begin() as connection:
                yield connection
        except sa.exc.IntegrityError as error:
            raise _Conflict(error.orig) from None
        except sa.exc.OperationalError as error:
            # A PostgreSQL serialization failure or deadlock is a conflict to retry too.
            if getattr(error.orig, "sqlstate", None) in ("40001", "40P01"):
                raise _Conflict(error.orig) from None
            raise AuditError(f"cannot {action} audit log {self.where!r}: {error.orig}") from None
        except sa.exc.DBAPIError as error:
            raise AuditError(f"cannot {action} audit log {self.where!r}: {error.orig}") from None


class _Conflict(Exception):
    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error


def _row(entry: AuditEntry) -> dict[str, Any]:
    row = entry.to_dict()
    row["data"] = canonical_json(entry.data)
    return row


def _entry(row: sa.Row) -> AuditEntry | AuditProblem:
    fields = dict(row._mapping)
    try:
        fields["data"] = json.loads(fields["data"])
    except (TypeError, ValueError) as error:
        return AuditProblem(int(fields["seq"]), f"data is not valid JSON ({error}), so the entry was edited")
    fields["seq"] = int(fields["seq"])
    fields["unix_time"] = float(fields["unix_time"])
    if not isinstance(fields["data"], dict):
        return AuditProblem(fields["seq"], "data is not a JSON object, so the entry was edited")
    return AuditEntry(**fields)


def _configure_sqlite(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite would start transactions itself; the "begin" listener does it instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql(f"BEGIN {connection.get_execution_options().get(_BEGIN_OPTION, 'DEFERRED')}")


def _configure_postgresql(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(_LOCK_OPTION):
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(busy_timeout_s * 1000))}")
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
