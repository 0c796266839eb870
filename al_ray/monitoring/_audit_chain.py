"""Audit entries and their hash chain: canonical JSON, SHA-256 and the checks of ``verify``.

Each entry's ``entry_hash`` is the SHA-256 of the canonical JSON of every
other field, ``prev_hash`` included, so an entry commits to the whole log
before it. Canonical JSON here means sorted keys, no whitespace, UTF-8, and
no NaN or infinity, so the same entry always hashes to the same digest,
whichever back end stored it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import PurePath
from typing import Any

import numpy as np

from al_ray.errors import AuditError

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditProblem",
    "AuditRecord",
    "build_entries",
    "canonical_json",
    "check_chain",
    "entry_from_dict",
]

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first entry."""

HASHED_FIELDS = ("seq", "time", "unix_time", "kind", "actor", "subject", "key", "data", "prev_hash")

_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def _to_json_value(value: Any) -> Any:
    """Convert numpy scalars and arrays, paths, sets and tuples to plain JSON types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"{value!r} of type {type(value).__name__} is not JSON-serializable")


def canonical_json(value: Any) -> str:
    """Return ``value`` as canonical JSON: sorted keys, no spaces, no NaN or infinity."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_to_json_value
    )


def _hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class AuditRecord:
    """What a caller appends: the entry before the log gives it a seq, a time and hashes.

    ``key`` makes an append idempotent: a record whose key is already in the
    log is skipped. A label's key is its ``(row_id, annotator, label)``, so a
    resumed run that stores the same answer again does not log it twice.
    ``unix_time`` is the entry's time in unix seconds; None means the time of
    the append.
    """

    kind: str
    actor: str
    subject: str
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    key: str | None = None
    unix_time: float | None = None


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One stored entry of the audit log."""

    seq: int
    time: str
    """UTC time as ISO 8601 with microseconds, e.g. ``2026-12-04T10:00:00.000000+00:00``."""
    unix_time: float
    """The same time in unix seconds, rounded to microseconds."""
    kind: str
    actor: str
    subject: str
    key: str | None
    data: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def hashed_fields(self) -> dict[str, Any]:
        """Return the fields that ``entry_hash`` covers."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def computed_hash(self) -> str:
        """Return the SHA-256 of the entry's content, which equals ``entry_hash`` unless it was changed."""
        return _hash(self.hashed_fields())

    def to_dict(self) -> dict[str, Any]:
        """Return every field as a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class AuditProblem:
    """A break in the chain that ``verify`` found.

    ``seq`` is the sequence number of the entry found wrong, or for a missing
    entry the number that is missing. ``line`` is the line of a JSON-lines
    log, or None for a database.
    """

    seq: int | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "entry"
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {self.message}"


def _check_record(record: AuditRecord) -> tuple[str, str, str, dict[str, Any], str | None]:
    if not isinstance(record, AuditRecord):
        raise AuditError(f"audit entries are AuditRecord objects, got {record!r} of type {type(record).__name__}")
    if not isinstance(record.kind, str) or not _KIND.match(record.kind):
        raise AuditError(
            f"audit kind must be 1 to 64 lowercase letters, digits, '_', '.' or '-', starting with a letter, "
            f"got {record.kind!r}; for example 'label' or 'model_version'"
        )
    for name in ("actor", "subject"):
        value = getattr(record, name)
        if not isinstance(value, str) or not value:
            raise AuditError(f"audit {name} must be a non-empty string, got {value!r} in a {record.kind!r} entry")
    if record.key is not None and (not isinstance(record.key, str) or not record.key):
        raise AuditError(f"audit key must be a non-empty string or None, got {record.key!r}")
    if not isinstance(record.data, Mapping):
        raise AuditError(f"audit data must be a mapping, got {type(record.data).__name__} in a {record.kind!r} entry")
    try:
        # Round-tripped, so the stored data is exactly what was hashed.
        data = json.loads(canonical_json(dict(record.data)))
    except (TypeError, ValueError) as error:
        raise AuditError(
            f"audit data of a {record.kind!r} entry for {record.subject!r} is not valid JSON "
            f"(NaN, infinity and custom objects are rejected): {error}"
        ) from None
    return record.kind, record.actor, record.subject, data, record.key


def _entry_time(unix_time: float | None) -> tuple[str, float]:
    seconds = time.time() if unix_time is None else float(unix_time)
    if not math.isfinite(seconds):
        raise AuditError(f"audit unix_time must be finite seconds, got {unix_time!r}")
    seconds = round(seconds, 6)
    iso = dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="microseconds")
    return iso, seconds


def build_entries(records: Iterable[AuditRecord], last: tuple[int, str] | None) -> list[AuditEntry]:
    """Chain ``records`` after the entry ``last`` = (seq, entry_hash), or start a new log when None."""
    seq, prev_hash = last if last is not None else (0, GENESIS_HASH)
    entries = []
    for record in records:
        kind, actor, subject, data, key = _check_record(record)
        iso, unix_time = _entry_time(record.unix_time)
        seq += 1
        fields = {
            "seq": seq, "time": iso, "unix_time": unix_time, "kind": kind, "actor": actor,
            "subject": subject, "key": key, "data": data, "prev_hash": prev_hash,
        }
        entry_hash = _hash(fields)
        entries.append(AuditEntry(**fields, entry_hash=entry_hash))
        prev_hash = entry_hash
    return entries


def entry_from_dict(raw: Mapping[str, Any]) -> AuditEntry:
    """Build an entry from its stored fields; raise ValueError or TypeError naming a missing or mistyped one."""
    missing = [name for name in (*HASHED_FIELDS, "entry_hash") if name not in raw]
    if missing:
        raise ValueError(f"missing fields {missing}")
    if not isinstance(raw["seq"], int) or isinstance(raw["seq"], bool):
        raise TypeError(f"seq must be an integer, got {raw['seq']!r}")
    if not isinstance(raw["data"], dict):
        raise TypeError(f"data must be a JSON object, got {type(raw['data']).__name__}")
    return AuditEntry(**{name: raw[name] for name in (*HASHED_FIELDS, "entry_hash")})


def check_chain(
    items: Iterable[AuditEntry | AuditProblem | tuple[int, AuditEntry | AuditProblem]],
    *,
    start: tuple[int, str] | None = None,
) -> Iterator[AuditProblem]:
    """Yield every break in a log read in stored order.

    ``items`` are entries, or problems the reader found (a line that is not
    an entry), each optionally paired with its line number. Each position
    yields at most one problem: a missing or out-of-order seq, a
    ``prev_hash`` that does not match the entry before, or an ``entry_hash``
    that does not match the entry's content. Checking goes on after a break,
    against the entry as stored, so later breaks are reported too.

    ``start`` is ``(seq, prev_hash)`` expected of the first item when
    ``items`` are the end of a log rather than all of it; default ``(1, GENESIS_HASH)``.
    """
    expected_seq, prev_hash = start if start is not None else (1, GENESIS_HASH)
    previous_seq: int | None = None
    for item in items:
        line, item = item if isinstance(item, tuple) else (None, item)
        if isinstance(item, AuditProblem):
            yield dataclasses.replace(item, line=line) if line is not None else item
            continue
        entry = item
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                missing = f"seq {expected_seq}" if entry.seq == expected_seq + 1 else f"seq {expected_seq} to {entry.seq - 1}"
                after = f"seq {previous_seq}" if previous_seq is not None else "the start of the log"
                yield AuditProblem(
                    expected_seq, f"{missing} missing: {after} is followed by seq {entry.seq} (entries deleted or moved later)", line
                )
            else:
                yield AuditProblem(
                    entry.seq,
                    f"out of order: found seq {entry.seq} where seq {expected_seq} was expected "
                    "(entries reordered or copied)",
                    line,
                )
        elif entry.prev_hash != prev_hash:
            before = f"seq {previous_seq}" if previous_seq is not None else "the start of the log"
            yield AuditProblem(
                entry.seq,
                f"prev_hash {entry.prev_hash[:12]}... does not match the entry_hash {prev_hash[:12]}... of {before}, "
                "so an entry before it was changed, removed or inserted",
                line,
            )
        elif entry.computed_hash() != entry.entry_hash:
            yield AuditProblem(
                entry.seq,
                "entry_hash does not match the entry's content, so the entry was edited after it was written",
                line,
            )
        if entry.seq >= expected_seq:
            expected_seq = entry.seq + 1
        prev_hash = entry.entry_hash
        previous_seq = entry.seq
