"""Token authentication on a real Ray head node started with RAY_AUTH_MODE=token by this module."""

from __future__ import annotations

import json
import re
import secrets
import urllib.request

import pytest
from cluster_head import start_head

from al_ray.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def head():
    node = start_head(token=secrets.token_hex(16))
    yield node
    node.stop()


@pytest.fixture
def no_token(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)


def test_submit_with_token_succeeds(head, cluster_config, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)
    config = cluster_config(loop={"rounds": 1, "batch_size": 20})
    argv = ["-v", "submit", str(config), "--address", head.address, "--follow", "--timeout", "240"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    submission_id = re.search(r"submitted job (\S+)", captured.out).group(1)
    assert f"job {submission_id} SUCCEEDED" in captured.out
    assert head.token not in captured.out
    assert head.token not in captured.err

    # What Ray stores about the job (shown by the dashboard) does not contain the token either.
    request = urllib.request.Request(
        f"{head.address}/api/jobs/{submission_id}", headers={"Authorization": f"Bearer {head.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        stored = json.loads(response.read())
    assert head.token not in json.dumps(stored)

    assert main(["jobs", "status", submission_id, "--address", head.address]) == 0
    assert "SUCCEEDED" in capsys.readouterr().out


def test_missing_token_named(head, cluster_config, capsys, no_token):
    assert main(["submit", str(cluster_config()), "--address", head.address]) == 2
    err = capsys.readouterr().err
    assert "has token authentication on, and no token is set" in err
    assert "export RAY_AUTH_TOKEN=" in err


def test_wrong_token_rejected_and_hidden(head, cluster_config, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", "wrong-" + head.token[:8])
    assert main(["jobs", "status", "any-id", "--address", head.address]) == 2
    err = capsys.readouterr().err
    assert "rejected the token from RAY_AUTH_TOKEN (HTTP 403)" in err
    assert "wrong-" not in err


def test_token_from_file(head, cluster_config, capsys, monkeypatch, tmp_path, no_token):
    token_file = tmp_path / "auth_token"
    token_file.write_text(head.token)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token_file))
    assert main(["check", str(cluster_config()), "--address", head.address]) == 0
    out = capsys.readouterr().out
    assert "(token authentication on)" in out
    assert head.token not in out
