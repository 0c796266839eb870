"""The audit log: an append-only, hash-chained record of labels, model versions, rollouts and triggers.

Every entry carries ``seq`` (1, 2, ...), its UTC time and a ``kind``
(``label``, ``model_version``, ``deployment``, ``traffic``, ``trigger``, ...).
The ``actor`` is an annotator id, a policy name or an OS user, and the
``subject`` a row_id, a model version or a deployment. ``data`` is a JSON
object. Last come the ``prev_hash`` of the entry before and the entry's own
``entry_hash``, the SHA-256 of the canonical JSON of all other fields. Changing, removing or reordering an
entry breaks the chain at that point, and :meth:`AuditLog.verify` names it.

NOTE: removing entries from the end leaves a valid, shorter chain. Record the
head (``al-ray audit verify`` prints it) somewhere the log's writers cannot
change, and pass it back as ``anchor`` to detect that.

Storage: a SQLite file (default), any SQLAlchemy URL (PostgreSQL), or a
JSON-lines file when the path ends in ``.jsonl``. Several processes (the
loop, the labeling service, the watcher) may append to one log at once: each
append reads the last entry and writes the next in one locked transaction, so
the chain never forks.

Example::

    with AuditLog("runs/mnist/audit.db") as log:
        log.append("label", actor="alice", subject="17", data={"label": "7"}, key="label:17:alice:7")
        assert log.verify() == []
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from al_ray.errors import AuditError
from al_ray.monitoring._audit_chain import (
    AuditEntry,
    AuditProblem,
    AuditRecord,
    check_chain,
)
from al_ray.monitoring._audit_jsonl import JsonlAuditStore
from al_ray.monitoring._audit_sql import SqlAuditStore, resolve_sql_url

__all__ = [
    "DEPLOYMENT",
    "KINDS",
    "LABEL",
    "MODEL_VERSION",
    "TRAFFIC",
    "TRIGGER",
    "AuditEntry",
    "AuditLog",
    "AuditProblem",
    "AuditRecord",
    "default_actor",
    "parse_time",
]

logger = logging.getLogger(__name__)

LABEL = "label"
"""Kind of an entry for one stored answer; subject: the row_id."""
MODEL_VERSION = "model_version"
"""Kind of an entry for one registered model version; subject: ``<registered name>/<version>``."""
DEPLOYMENT = "deployment"
"""Kind of an entry for a version put into or taken out of service."""
TRAFFIC = "traffic"
"""Kind of an entry for a change of traffic weights (canary start, advance, promote, rollback)."""
TRIGGER = "trigger"
"""Kind of an entry for a watcher's decision to start a round, or not."""

KINDS = (LABEL, MODEL_VERSION, DEPLOYMENT, TRAFFIC, TRIGGER)
"""The entry kinds that al_ray writes."""

DEFAULT_BUSY_TIMEOUT_S = 30.0


def default_actor() -> str:
    """Return the OS user name, or ``uid:<n>`` where the user has no name (some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def parse_time(text: str) -> float:
    """Parse an ISO 8601 date or time into unix seconds; a time without an offset is UTC.

    Raises
    ------
    AuditError
        If ``text`` is not an ISO 8601 date or time such as ``2026-12-04`` or ``2026-12-04T10:30:00+01:00``.
    """
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise AuditError(
            f"invalid time {text!r}; use ISO 8601 such as 2026-12-04, 2026-12-04T10:30 or "
            "2026-12-04T10:30:00+01:00 (UTC when no offset is given)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class AuditLog:
    """An append-only, hash-chained audit log.

    Parameters
    ----------
    location
        A SQLAlchemy URL (``sqlite:///runs/mnist/audit.db``,
        ``postgresql+psycopg://...``), a SQLite file path, or a path ending
        in ``.jsonl`` for a JSON-lines file. Missing folders and tables are created.
    busy_timeout_s
        Seconds a database append waits for another writer's lock.

    Raises
    ------
    AuditError
        If the location is invalid, or the log cannot be created or opened.
    """

    def __init__(self, location: str | os.PathLike[str], *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        if isinstance(location, os.PathLike):
            location = os.fspath(location)
        if not isinstance(location, str) or not location.strip():
            raise AuditError(
                f"the audit log location must be a file path or a SQLAlchemy URL, got {location!r}; "
                "for example runs/mnist/audit.db or runs/mnist/audit.jsonl"
            )
        if "://" not in location and location.endswith(".jsonl"):
            self._store: JsonlAuditStore | SqlAuditStore = JsonlAuditStore(Path(location).expanduser())
        else:
            self._store = SqlAuditStore(resolve_sql_url(location), busy_timeout_s)
        self._closed = False

    @property
    def location(self) -> str:
        """The file path, or the URL with its password hidden."""
        return self._store.where

    def close(self) -> None:
        """Release the database connections; closing twice is a no-op."""
        if not self._closed:
            self._closed = True
            self._store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditLog({self.location!r})"

    def append(
        self,
        kind: str,
        actor: str,
        subject: str | int,
        data: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        unix_time: float | None = None,
    ) -> AuditEntry | None:
        """Append one entry; return it, or None when an entry with ``key`` is already stored."""
        entries = self.append_many(
            [AuditRecord(kind, actor, str(subject), dict(data or {}), key=key, unix_time=unix_time)]
        )
        return entries[0] if entries else None

    def append_many(self, records: Iterable[AuditRecord]) -> list[AuditEntry]:
        """Append ``records`` in order, all or none; return the entries written.

        A record whose ``key`` is already stored, or repeats a key earlier in
        ``records``, is skipped.

        Raises
        ------
        AuditError
            If a record is invalid (nothing is written then), or the log cannot be written.
        """
        self._check_open()
        batch = list(records)
        if not batch:
            return []
        entries = self._store.append(batch)
        logger.debug("audit: appended %d of %d entries to %s", len(entries), len(batch), self.location)
        return entries

    def entries(
        self,
        *,
        kind: str | Sequence[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        subject: str | int | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Return the entries that match every filter given, in seq order.

        ``since`` and ``until`` are unix seconds (``since`` included,
        ``until`` excluded; see :func:`parse_time`); ``limit`` keeps the newest
        matches. Entries that fail to parse are left out with a logged
        warning that counts them; :meth:`verify` says where they are.
        """
        self._check_open()
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise AuditError(f"limit must be a whole number of at least 1, got {limit!r}")
        kinds = [kind] if isinstance(kind, str) else list(kind or ())
        entries, unreadable = self._store.query(
            kinds=kinds,
            since=since,
            until=until,
            subject=None if subject is None else str(subject),
            actor=actor,
            limit=limit,
        )
        if unreadable:
            logger.warning(
                "audit log %s: %d entries could not be read and are left out, the first at %s; "
                "run `al-ray audit verify` on the log to see every break",
                self.location, len(unreadable), unreadable[0],
            )
        return entries

    def head(self) -> AuditEntry | None:
        """Return the last entry, or None for an empty log."""
        self._check_open()
        return self._store.last()

    def verify(self, *, anchor: tuple[int, str] | None = None) -> list[AuditProblem]:
        """Check the whole chain; return its problems in log order, empty when it is intact.

        Parameters
        ----------
        anchor
            ``(seq, entry_hash)`` of an entry recorded earlier outside the log.
            The log must still contain that entry with that hash, so a log
            cut back to before it, or rewritten up to it, is reported.
        """
        self._check_open()
        problems: list[AuditProblem] = []
        anchor_found = False

        def observe(items):
            nonlocal anchor_found
            for item in items:
                entry = item[1] if isinstance(item, tuple) else item
                if anchor is not None and isinstance(entry, AuditEntry) and entry.seq == anchor[0]:
                    anchor_found = True
                    if entry.entry_hash != anchor[1]:
                        problems.append(
                            AuditProblem(
                                entry.seq,
                                f"entry_hash {entry.entry_hash[:12]}... differs from the anchor "
                                f"{anchor[1][:12]}..., so the log was rewritten up to this entry",
                            )
                        )
                yield item

        problems.extend(check_chain(observe(self._store.iter_entries())))
        if anchor is not None and not anchor_found:
            problems.append(
                AuditProblem(anchor[0], "the anchor entry is missing, so the log was cut back to before it")
            )
        if problems:
            logger.info("audit log %s: %d problems, the first at %s", self.location, len(problems), problems[0])
        return problems

    def verify_recent(self, count: int) -> list[AuditProblem]:
        """Check the chain of the newest ``count`` entries only; return their problems, empty when intact.

        A quick check for a long log: it finds an edited, removed or
        reordered entry among the newest ones, but not a break before them
        (:meth:`verify` checks the whole chain).
        """
        self._check_open()
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise AuditError(f"count must be a whole number of at least 1, got {count!r}")
        items = self._store.tail(count)
        entries = [item[1] if isinstance(item, tuple) else item for item in items]
        first = next((entry for entry in entries if isinstance(entry, AuditEntry)), None)
        if first is None:
            return list(check_chain(items))
        # The first entry's link to the one before it is not checked: that entry was not read.
        return list(check_chain(items, start=(first.seq, first.prev_hash)))

    def _check_open(self) -> None:
        if self._closed:
            raise AuditError(f"audit log {self.location!r} is closed; open a new AuditLog to use it")
