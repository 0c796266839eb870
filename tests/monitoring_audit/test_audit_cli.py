"""``al-ray audit verify|show``: exit codes, the first bad entry named, filters."""

from __future__ import annotations

import json

import pytest
import yaml

from al_ray.cli import main
from al_ray.monitoring.audit import AuditLog

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("label", "alice", 17, {"label": "7"}, unix_time=T0)
        log.append("label", "bob", 18, {"label": "3"}, unix_time=T0 + 60)
        log.append("model_version", "root", "mnist-margin/1", {"round": 0}, unix_time=T0 + 120)
        log.append("traffic", "canary-controller", "mnist-margin/2", {"action": "start"}, unix_time=T0 + 3600)
        log.append("label", "alice", 19, {"label": "1"}, unix_time=T0 + 7200)
    return path


def test_verify_intact_exits_0(log_path, capsys):
    assert main(["audit", "verify", "--path", str(log_path)]) == 0
    out = capsys.readouterr().out
    assert "5 entries, chain intact" in out
    head = out.splitlines()[-1].removeprefix("head: ")
    assert main(["audit", "verify", "--path", str(log_path), "--anchor", head]) == 0


def test_verify_edited_exits_1_naming_entry(log_path, capsys):
    lines = log_path.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"round":0', '"round":5')
    log_path.write_text("".join(lines))
    assert main(["audit", "verify", "--path", str(log_path)]) == 1
    err = capsys.readouterr().err
    assert "chain broken; first bad entry: seq 3 (line 3)" in err
    assert "edited" in err


def test_verify_truncated_with_anchor_exits_1(log_path, capsys):
    main(["audit", "verify", "--path", str(log_path)])
    head = capsys.readouterr().out.splitlines()[-1].removeprefix("head: ")
    lines = log_path.read_text().splitlines(keepends=True)
    log_path.write_text("".join(lines[:-1]))
    assert main(["audit", "verify", "--path", str(log_path)]) == 0
    assert main(["audit", "verify", "--path", str(log_path), "--anchor", head]) == 1
    assert "first bad entry: seq 5" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "verify"], "give either a config"),
        (["audit", "verify", "--path", "{missing}"], "no audit log at"),
        (["audit", "verify", "--path", "{log}", "--anchor", "5:abc"], "--anchor must be SEQ:HASH"),
        (["audit", "show", "--path", "{log}", "--since", "last week"], "invalid time 'last week'"),
        (["audit", "show", "--path", "{log}", "--limit", "0"], "--limit must be 1 or more"),
        (
            ["audit", "show", "--path", "{log}", "--kind", "label,bogus"],
            "unknown --kind 'bogus'; valid kinds: label, model_version, deployment, traffic, trigger",
        ),
    ],
)
def test_user_errors_exit_2(log_path, tmp_path, capsys, argv, message):
    argv = [arg.format(missing=tmp_path / "none.db", log=log_path) for arg in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def shown(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_show_filters(log_path, capsys):
    base = ["audit", "show", "--path", str(log_path), "--json"]
    assert main(base + ["--kind", "label"]) == 0
    assert [entry["seq"] for entry in shown(capsys)] == [1, 2, 5]
    assert main(base + ["--kind", "label,traffic", "--actor", "alice"]) == 0
    assert [entry["seq"] for entry in shown(capsys)] == [1, 5]
    assert main(base + ["--id", "18"]) == 0
    assert [entry["data"] for entry in shown(capsys)] == [{"label": "3"}]
    # --since is included and --until excluded; a time without an offset is UTC.
    assert main(base + ["--since", "2027-01-15T08:01:00", "--until", "2027-01-15T09:00:00+00:00"]) == 0
    assert [entry["seq"] for entry in shown(capsys)] == [2, 3]
    assert main(base + ["--since", "2027-01-15T10:00:00+01:00"]) == 0
    assert [entry["seq"] for entry in shown(capsys)] == [4, 5]
    assert main(base + ["--limit", "2"]) == 0
    assert [entry["seq"] for entry in shown(capsys)] == [4, 5]


def test_show_table(log_path, capsys):
    assert main(["audit", "show", "--path", str(log_path), "--kind", "model_version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["seq", "time", "(UTC)", "kind", "actor", "subject", "data"]
    assert lines[1].split() == ["3", "2027-01-15T08:02:00.000000", "model_version", "root", "mnist-margin/1", '{"round":0}']


def test_config_names_default_log(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"name": "demo", "data": {"dataset": "mnist_test"}, "monitoring": {"audit": {"enabled": True}}})
    )
    run_dir = tmp_path / "run"
    with AuditLog(run_dir / "audit.db") as log:
        log.append("trigger", "drift", "rows 0-999", {"decision": "start"})
    assert main(["audit", "verify", str(config), "--output", str(run_dir)]) == 0
    assert "1 entries, chain intact" in capsys.readouterr().out
    assert main(["audit", "show", str(config), "--output", str(run_dir), "--json"]) == 0
    assert shown(capsys)[0]["actor"] == "drift"
    # Without --output the default folder runs/demo/margin has no log.
    assert main(["audit", "verify", str(config)]) == 2
    assert "no audit log at" in capsys.readouterr().err


def test_show_warns_about_unreadable_lines(log_path, capsys):
    lines = log_path.read_text().splitlines(keepends=True)
    lines[1] = lines[1][:40] + "\n"
    log_path.write_text("".join(lines))

    assert main(["audit", "show", "--path", str(log_path), "--json"]) == 0

    captured = capsys.readouterr()
    assert [json.loads(line)["seq"] for line in captured.out.splitlines()] == [1, 3, 4, 5]
    assert "1 entries could not be read and are left out, the first at entry (line 2)" in captured.err
