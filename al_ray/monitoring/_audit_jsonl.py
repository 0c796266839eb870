"""The audit log as a JSON-lines file, one entry a line, appended under an exclusive file lock.

Every append opens the file and holds ``flock(LOCK_EX)`` while it reads the
last entry and writes the next ones, then fsyncs before it unlocks. flock
locks belong to an open file, so threads of one process exclude each other
as processes do. Readers take a shared lock, so they never see half a line.

NOTE: an append with keys (labels) scans the whole file for them, so appends
slow down as the file grows. The SQLite back end looks keys up by index.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from al_ray.errors import AuditError
from al_ray.monitoring._audit_chain import (
    AuditEntry,
    AuditProblem,
    AuditRecord,
    build_entries,
    canonical_json,
    entry_from_dict,
)

__all__ = ["JsonlAuditStore"]

logger = logging.getLogger(__name__)

_TAIL_CHUNK_BYTES = 64 * 1024


class JsonlAuditStore:
    """Audit entries as lines of one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
        except OSError as error:
            raise AuditError(
                f"cannot create audit log {self.where!r}: {error}; choose a path in a writable folder"
            ) from None

    def close(self) -> None:
        """Nothing stays open between calls."""

    def append(self, records: Sequence[AuditRecord]) -> list[AuditEntry]:
        """Chain and append ``records`` under the file lock; skip records whose key is stored."""
        with self._locked("ab+", fcntl.LOCK_EX) as file:
            last = self._last_link(file)
            keys = {record.key for record in records if record.key is not None}
            stored_keys = self._stored_keys(file, keys) if keys else set()
            fresh = []
            for record in records:
                if record.key is not None:
                    if record.key in stored_keys:
                        continue
                    stored_keys.add(record.key)
                fresh.append(record)
            entries = build_entries(fresh, last)
            if entries:
                payload = "".join(canonical_json(entry.to_dict()) + "\n" for entry in entries).encode("utf-8")
                try:
                    file.write(payload)
                    file.flush()
                    os.fsync(file.fileno())
                except OSError as error:
                    raise AuditError(f"cannot append to audit log {self.where!r}: {error}") from None
            return entries

    def iter_entries(self) -> Iterator[tuple[int, AuditEntry | AuditProblem]]:
        """Yield ``(line number, entry or problem)`` for every line, in file order."""
        with self._locked("rb", fcntl.LOCK_SH) as file:
            for number, raw in enumerate(file, start=1):
                yield number, _parse_line(raw)

    def tail(self, count: int) -> list[tuple[int, AuditEntry | AuditProblem]]:
        """Return ``(line number, entry or problem)`` of the last ``count`` lines, in file order."""
        # NOTE: parses every line to keep the last ones; a reader from the end of the file would be faster.
        return list(collections.deque(self.iter_entries(), maxlen=count))

    def last(self) -> AuditEntry | None:
        with self._locked("rb", fcntl.LOCK_SH) as file:
            size = file.seek(0, os.SEEK_END)
            if size == 0:
                return None
            entry = _parse_line(_last_line(file, size))
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
        """Return the matching entries, and the lines that could not be read (which match no filter)."""
        matches = []
        unreadable = []
        for line, entry in self.iter_entries():
            if not isinstance(entry, AuditEntry):
                unreadable.append(AuditProblem(entry.seq, entry.message, line))
                continue
            if kinds and entry.kind not in kinds:
                continue
            if since is not None and entry.unix_time < since:
                continue
            if until is not None and entry.unix_time >= until:
                continue
            if subject is not None and entry.subject != subject:
                continue
            if actor is not None and entry.actor != actor:
                continue
            matches.append(entry)
        return (matches[-limit:] if limit is not None else matches), unreadable

    @contextmanager
    def _locked(self, mode: str, operation: int) -> Iterator[BinaryIO]:
        try:
            file = open(self.path, mode)  # noqa: SIM115 (closed below, after the unlock)
        except OSError as error:
            raise AuditError(
                f"cannot open audit log {self.where!r}: {error}; check the path and its permissions"
            ) from None
        try:
            fcntl.flock(file.fileno(), operation)
            try:
                yield file
            finally:
                fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        finally:
            file.close()

    def _last_link(self, file: BinaryIO) -> tuple[int, str] | None:
        """Return (seq, entry_hash) of the last line, or None for an empty file."""
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return None
        line = _last_line(file, size)
        if not line.endswith(b"\n"):
            raise AuditError(
                f"the last line of audit log {self.where!r} was cut short (no newline at the end), so a write "
                "did not finish; run `al-ray audit verify --path` to see it, and move the file aside to start "
                "a new log"
            )
        try:
            raw = json.loads(line)
            return int(raw["seq"]), str(raw["entry_hash"])
        except (ValueError, KeyError, TypeError) as error:
            raise AuditError(
                f"the last line of audit log {self.where!r} is not an audit entry ({error}); "
                "run `al-ray audit verify --path` to find where the log breaks"
            ) from None

    def _stored_keys(self, file: BinaryIO, keys: set[str]) -> set[str]:
        file.seek(0)
        stored = set()
        for raw in file:
            try:
                key = json.loads(raw).get("key")
            except (ValueError, AttributeError):
                continue
            if key in keys:
                stored.add(key)
        return stored


def _last_line(file: BinaryIO, size: int) -> bytes:
    """Return the file's last line, with its newline if it has one."""
    chunk = _TAIL_CHUNK_BYTES
    while True:
        start = max(0, size - chunk)
        file.seek(start)
        tail = file.read(size - start)
        # The newline that ends the last line does not start it.
        cut = tail.rfind(b"\n", 0, len(tail) - 1)
        if cut >= 0:
            return tail[cut + 1 :]
        if start == 0:
            return tail
        chunk *= 2


def _parse_line(raw: bytes) -> AuditEntry | AuditProblem:
    if not raw.endswith(b"\n"):
        return AuditProblem(None, "the line was cut short (no newline at the end), so a write did not finish")
    try:
        fields = json.loads(raw)
    except ValueError as error:
        return AuditProblem(None, f"the line is not valid JSON ({error})")
    if not isinstance(fields, dict):
        return AuditProblem(None, f"the line is not a JSON object, got {type(fields).__name__}")
    try:
        return entry_from_dict(fields)
    except (ValueError, TypeError) as error:
        seq = fields.get("seq") if isinstance(fields.get("seq"), int) else None
        return AuditProblem(seq, f"the line is not an audit entry: {error}")
