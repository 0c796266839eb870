"""Audit chain: hashes by hand, and edited, deleted and reordered entries found on every back end."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from al_ray.errors import AuditError
from al_ray.monitoring._audit_chain import (
    GENESIS_HASH,
    AuditRecord,
    build_entries,
    check_chain,
)
from al_ray.monitoring.audit import AuditLog


def fill(log: AuditLog, count: int = 5) -> list:
    return [log.append("label", f"annotator{i % 2}", i, {"label": str(i % 3), "round": 1}) for i in range(1, count + 1)]


def sql_engine(location: str) -> sa.Engine:
    return sa.create_engine(location if "://" in location else f"sqlite:///{location}")


def is_jsonl(location: str) -> bool:
    return location.endswith(".jsonl")


def read_lines(location: str) -> list[str]:
    with open(location, encoding="utf-8") as file:
        return file.readlines()


def write_lines(location: str, lines: list[str]) -> None:
    with open(location, "w", encoding="utf-8") as file:
        file.writelines(lines)


def edit_data(location: str, seq: int, data: dict) -> None:
    """Change an entry's data in storage, as someone with write access to the file or table could."""
    if is_jsonl(location):
        lines = read_lines(location)
        raw = json.loads(lines[seq - 1])
        raw["data"] = data
        lines[seq - 1] = json.dumps(raw, sort_keys=True) + "\n"
        write_lines(location, lines)
        return
    engine = sql_engine(location)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE audit_log SET data = :data WHERE seq = :seq"), {"data": json.dumps(data), "seq": seq}
        )
    engine.dispose()


def delete_entry(location: str, seq: int) -> None:
    if is_jsonl(location):
        lines = read_lines(location)
        del lines[seq - 1]
        write_lines(location, lines)
        return
    engine = sql_engine(location)
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": seq})
    engine.dispose()


def swap_entries(location: str, first: int, second: int) -> None:
    """Swap two entries: lines in a file; every column but seq in a table, whose rows are ordered by seq."""
    if is_jsonl(location):
        lines = read_lines(location)
        lines[first - 1], lines[second - 1] = lines[second - 1], lines[first - 1]
        write_lines(location, lines)
        return
    engine = sql_engine(location)
    columns = ("time", "unix_time", "kind", "actor", "subject", "key", "data", "prev_hash", "entry_hash")
    with engine.begin() as connection:
        rows = {
            seq: connection.execute(
                sa.text(f"SELECT {', '.join(columns)} FROM audit_log WHERE seq = :seq"), {"seq": seq}
            ).one()._asdict()
            for seq in (first, second)
        }
        # prev_hash and entry_hash are unique, so clear the rows before writing them back swapped.
        for seq in (first, second):
            connection.execute(
                sa.text("UPDATE audit_log SET prev_hash = :blank, entry_hash = :blank2 WHERE seq = :seq"),
                {"blank": f"x{seq}", "blank2": f"y{seq}", "seq": seq},
            )
        for seq, other in ((first, second), (second, first)):
            assignments = ", ".join(f"{column} = :{column}" for column in columns)
            connection.execute(sa.text(f"UPDATE audit_log SET {assignments} WHERE seq = :seq"), {**rows[other], "seq": seq})
    engine.dispose()


def test_entry_hash_by_hand(tmp_path):
    with AuditLog(tmp_path / "audit.db") as log:
        first = log.append("label", "alice", 17, {"label": "7"}, key="label:17:alice:7", unix_time=1_800_000_000.25)
        second = log.append("model_version", "bob", "m/1", {"round": 0}, unix_time=1_800_000_001.0)
    assert first.seq == 1
    assert first.time == "2027-01-15T08:00:00.250000+00:00"
    assert first.prev_hash == GENESIS_HASH
    canonical = (
        '{"actor":"alice","data":{"label":"7"},"key":"label:17:alice:7","kind":"label",'
        '"prev_hash":"' + GENESIS_HASH + '","seq":1,"subject":"17",'
        '"time":"2027-01-15T08:00:00.250000+00:00","unix_time":1800000000.25}'
    )
    assert first.entry_hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert second.prev_hash == first.entry_hash
    assert second.seq == 2


def test_intact_chain_verifies(audit_location):
    with AuditLog(audit_location) as log:
        entries = fill(log)
        assert log.verify() == []
        assert log.head() == entries[-1]
        assert [entry.seq for entry in log.entries()] == [1, 2, 3, 4, 5]


def test_edited_entry_named(audit_location):
    with AuditLog(audit_location) as log:
        fill(log)
        edit_data(audit_location, 3, {"label": "9", "round": 1})
        problems = log.verify()
    assert len(problems) == 1
    assert problems[0].seq == 3
    assert "edited" in problems[0].message


def test_edited_and_rehashed_entry_breaks_next_link(tmp_path):
    location = str(tmp_path / "audit.jsonl")
    with AuditLog(location) as log:
        fill(log)
        lines = read_lines(location)
        raw = json.loads(lines[2])
        raw["data"] = {"label": "9", "round": 1}
        fields = {key: value for key, value in raw.items() if key != "entry_hash"}
        raw["entry_hash"] = hashlib.sha256(
            json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        lines[2] = json.dumps(raw) + "\n"
        write_lines(location, lines)
        problems = log.verify()
    # Entry 3 is consistent in itself now, but entry 4 still points at its old hash.
    assert [problem.seq for problem in problems] == [4]
    assert "prev_hash" in problems[0].message


def test_deleted_entry_named(audit_location):
    with AuditLog(audit_location) as log:
        fill(log)
        delete_entry(audit_location, 3)
        problems = log.verify()
    assert len(problems) == 1
    assert problems[0].seq == 3
    assert "seq 3 missing" in problems[0].message


def test_deleted_first_entry_named(audit_location):
    with AuditLog(audit_location) as log:
        fill(log)
        delete_entry(audit_location, 1)
        problems = log.verify()
    assert problems[0].seq == 1
    assert "the start of the log" in problems[0].message


def test_reordered_entries_named(audit_location):
    with AuditLog(audit_location) as log:
        fill(log)
        swap_entries(audit_location, 2, 3)
        problems = log.verify()
    assert problems
    assert problems[0].seq == 2


def test_removed_tail_needs_anchor(audit_location):
    with AuditLog(audit_location) as log:
        entries = fill(log)
        anchor = (entries[-1].seq, entries[-1].entry_hash)
        delete_entry(audit_location, 5)
        # A shorter chain is still a valid chain.
        assert log.verify() == []
        problems = log.verify(anchor=anchor)
        assert [problem.seq for problem in problems] == [5]
        assert "cut back" in problems[0].message
        assert log.verify(anchor=(entries[3].seq, entries[3].entry_hash)) == []
        assert log.verify(anchor=(4, entries[2].entry_hash))[0].seq == 4


def test_key_makes_append_idempotent(audit_location):
    with AuditLog(audit_location) as log:
        assert log.append("label", "alice", 1, {"label": "a"}, key="label:1:alice:a") is not None
        assert log.append("label", "alice", 1, {"label": "a"}, key="label:1:alice:a") is None
        written = log.append_many(
            [
                AuditRecord("label", "bob", "2", {"label": "b"}, key="k2"),
                AuditRecord("label", "bob", "2", {"label": "b"}, key="k2"),
                AuditRecord("label", "bob", "3", {"label": "c"}, key="label:1:alice:a"),
                AuditRecord("trigger", "drift", "window 1", {"decision": "start"}),
            ]
        )
        assert [entry.subject for entry in written] == ["2", "window 1"]
        assert [entry.seq for entry in log.entries()] == [1, 2, 3]
        assert log.verify() == []


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (AuditRecord("label", "alice", "1", {"score": math.nan}), "not valid JSON"),
        (AuditRecord("label", "alice", "1", {"when": object()}), "not valid JSON"),
        (AuditRecord("Label!", "alice", "1"), "audit kind must be"),
        (AuditRecord("label", "", "1"), "actor must be a non-empty string"),
        (AuditRecord("label", "alice", ""), "subject must be a non-empty string"),
    ],
)
def test_invalid_record_writes_nothing(tmp_path, record, match):
    with AuditLog(tmp_path / "audit.db") as log:
        log.append("label", "alice", 0, {"label": "a"})
        with pytest.raises(AuditError, match=match):
            log.append_many([AuditRecord("label", "bob", "5", {"label": "b"}), record])
        assert [entry.seq for entry in log.entries()] == [1]


def test_numpy_values_stored_as_json(tmp_path):
    import numpy as np

    with AuditLog(tmp_path / "audit.jsonl") as log:
        entry = log.append("trigger", "drift", "w1", {"share": np.float32(0.5), "rows": np.arange(3), "n": np.int64(4)})
        assert entry.data == {"share": 0.5, "rows": [0, 1, 2], "n": 4}
        assert log.verify() == []


def test_cut_short_line_reported_and_blocks_append(tmp_path):
    location = tmp_path / "audit.jsonl"
    with AuditLog(location) as log:
        fill(log, 3)
        with open(location, "a", encoding="utf-8") as file:
            file.write('{"seq": 4, "kind": "lab')
        problems = log.verify()
        assert [problem.line for problem in problems] == [4]
        assert "cut short" in problems[0].message
        with pytest.raises(AuditError, match="cut short"):
            log.append("label", "alice", 9, {"label": "x"})


def test_invalid_locations_rejected(tmp_path):
    with pytest.raises(AuditError, match="in-memory SQLite"):
        AuditLog("sqlite:///:memory:")
    with pytest.raises(AuditError, match="file path or a SQLAlchemy URL"):
        AuditLog("  ")
    with pytest.raises(AuditError, match="invalid audit log URL"):
        AuditLog("postgresql+psycopg://user@host:notaport/db")


def test_closed_log_rejects_use(tmp_path):
    log = AuditLog(tmp_path / "audit.db")
    log.close()
    log.close()
    with pytest.raises(AuditError, match="is closed"):
        log.append("label", "alice", 1)


_FIELDS = ("time", "unix_time", "kind", "actor", "subject", "key", "data", "prev_hash", "entry_hash")


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(min_value=1, max_value=12),
    target=st.integers(min_value=0, max_value=11),
    field=st.sampled_from(_FIELDS),
)
def test_any_single_field_change_detected_at_its_entry(count, target, field):
    records = [AuditRecord("label", f"a{i}", str(i), {"label": str(i)}, unix_time=1_800_000_000 + i) for i in range(count)]
    entries = build_entries(records, None)
    target %= count
    original = entries[target]
    changed_value = {
        "time": original.time.replace("2027", "2031"),
        "unix_time": original.unix_time + 1,
        "kind": "model_version",
        "actor": original.actor + "x",
        "subject": original.subject + "0",
        "key": "forged",
        "data": {"label": "forged"},
        "prev_hash": "f" * 64,
        "entry_hash": "e" * 64,
    }[field]
    entries[target] = dataclasses.replace(original, **{field: changed_value})
    problems = list(check_chain(entries))
    assert problems
    assert problems[0].seq == original.seq


def test_recent_check_reads_only_tail(audit_location):
    with AuditLog(audit_location) as log:
        fill(log, count=8)
        assert log.verify_recent(3) == []
        edit_data(audit_location, 2, {"label": "9", "round": 1})
        # Seq 2 is before the last 3 entries, so only the whole check finds it.
        assert log.verify_recent(3) == []
        assert [problem.seq for problem in log.verify()] == [2]
        delete_entry(audit_location, 7)
        problems = log.verify_recent(3)
    assert [problem.seq for problem in problems] == [7]
    assert "missing" in problems[0].message
