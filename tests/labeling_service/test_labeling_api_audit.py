"""Audit entries and metrics of answers sent over HTTP: `al-ray label serve` with monitoring on, then `al-ray audit`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from labeling_service_support import open_labeling_run, write_human_config

from al_ray.cli import main
from al_ray.config import load_config
from al_ray.data import LabeledData, load_shipped
from al_ray.labeling.queue import LabelQueue
from al_ray.labels import LabelStore
from al_ray.monitoring.audit import AuditLog


def test_failed_audit_append_is_503(tmp_path: Path, mnist: LabeledData) -> None:
    closed = AuditLog(tmp_path / "audit.db")
    closed.close()
    for run in open_labeling_run(f"sqlite:///{tmp_path / 'labels.db'}", mnist, audit=closed):
        task = run.next_item("alice")
        body = {"item_id": task["item_id"], "label": "7", "submission_id": "s1"}

        response = run.client.post("/api/answers", json=body, headers=run.auth("alice"))

        assert response.status_code == 503
        assert response.json() == {
            "error": "audit_unavailable",
            "message": "the answer was stored, but its audit entry could not be written; send the same request again",
        }
        assert [answer["label"] for answer in run.queue.my_answers("alice")] == ["7"]


@pytest.fixture
def audited_run(tmp_path: Path) -> Path:
    """A human-labeled run with the audit log and metrics on, rows 0-3 enqueued, and alice and bob added."""
    config_path = write_human_config(
        tmp_path, monitoring={"audit": {"enabled": True}, "metrics": {"enabled": True}}, labeling={"cost_per_label": 0.25}
    )
    with LabelStore(tmp_path / "run" / "labels.db") as store:
        store.begin_round(1)
        store.post_tasks(1, [0, 1, 2, 3])
        store.mark_round_queried(1)
        LabelQueue.for_run(store, load_shipped("mnist_test").classes, load_config(config_path)).enqueue(store.tasks())
    return config_path


def _token(config_path: Path, name: str, capsys) -> str:
    assert main(["label", "annotators", "add", name, str(config_path)]) == 0
    return re.search(r"^token: (\S+)$", capsys.readouterr().out, re.MULTILINE).group(1)


def _serve(config_path: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with open(log, "w", encoding="utf-8") as stream:
        server = subprocess.Popen(
            [sys.executable, "-m", "al_ray.cli", "label", "serve", str(config_path), "--port", "0"],
            stdout=subprocess.PIPE, stderr=stream, text=True, env={**os.environ},
        )
    line = server.stdout.readline()
    match = re.search(r"labeling page: (\S+)/$", line)
    assert match, line + log.read_text()
    return server, match.group(1)


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    server.stdout.close()


def _answer(url: str, token: str, submission_id: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        task = client.get("/api/next").json()["task"]
        body = {"item_id": task["item_id"], "label": "7", "submission_id": submission_id}
        response = client.post("/api/answers", json=body)
    assert response.status_code == 201, response.text
    return body


@pytest.mark.slow
def test_served_answers_audited(audited_run: Path, tmp_path: Path, capsys) -> None:
    tokens = {name: _token(audited_run, name, capsys) for name in ("alice", "bob")}
    server, url = _serve(audited_run, tmp_path / "serve.log")
    try:
        first = _answer(url, tokens["alice"], "a1")
        _answer(url, tokens["bob"], "b1")
        replay = httpx.post(
            f"{url}/api/answers", json=first, headers={"Authorization": f"Bearer {tokens['alice']}"}, timeout=30
        )
        assert replay.status_code == 200
        assert replay.json()["stored"] is False
        metrics = httpx.get(f"{url}/metrics", timeout=30)
    finally:
        _stop(server)

    assert metrics.status_code == 200
    assert 'al_ray_labels_total{annotator="alice"} 1.0' in metrics.text
    assert 'al_ray_labels_total{annotator="bob"} 1.0' in metrics.text
    assert 'al_ray_labeling_cost_total{annotator="alice"} 0.25' in metrics.text
    assert "al_ray_label_tasks_pending 2.0" in metrics.text

    assert main(["audit", "verify", str(audited_run)]) == 0
    assert "2 entries, chain intact" in capsys.readouterr().out

    assert main(["audit", "show", str(audited_run), "--kind", "label", "--json"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(entry["actor"], entry["subject"], entry["data"]["label"]) for entry in entries] == [
        ("alice", "0", "7"),
        ("bob", "1", "7"),
    ]
    assert {entry["data"]["source"] for entry in entries} == {"labeling-service"}

    assert main(["audit", "show", str(audited_run), "--kind", "label"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3
    assert table[1].split()[3:5] == ["alice", "0"]
    assert table[2].split()[3:5] == ["bob", "1"]
