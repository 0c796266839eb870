"""A Ray head node started with `ray start --head --block` for a test module, and stopped by its own pids.

`ray stop` would stop every Ray process on the machine, including the
clusters of other test sessions. This module therefore stops the head through
the process tree of the `ray start` command it launched, and through the
processes whose command line names the head's own temp folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may contain spaces; fields after it are fixed.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Return every process below ``pid`` in the process tree."""
    tree = _children_by_parent()
    found, stack = [], list(tree.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(tree.get(child, []))
    return found


def processes_naming(text: str) -> list[int]:
    """Return the pids whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def _kill(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


@dataclass
class HeadNode:
    """A running head node: its dashboard address, temp folder and the token it requires (if any)."""

    address: str
    temp_dir: Path
    process: subprocess.Popen
    log_path: Path
    token: str | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def stop(self) -> None:
        tree = descendants(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        time.sleep(0.5)
        leftovers = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
        leftovers += processes_naming(str(self.temp_dir))
        _kill(sorted(set(leftovers)), signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _answers(address: str, token: str | None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        for path in ("/api/version", "/api/jobs/"):
            with urllib.request.urlopen(urllib.request.Request(address + path, headers=headers), timeout=2) as reply:
                json.loads(reply.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True


def start_head(*, token: str | None = None, num_cpus: int = 2) -> HeadNode:
    """Start a head node on 127.0.0.1 with free ports; with ``token``, token authentication is on."""
    # Unix socket paths are limited to 107 bytes, so the temp folder name is short.
    temp_dir = Path(tempfile.mkdtemp(prefix="alrh", dir="/tmp"))
    dashboard_port = free_port()

    env = {
        key: value for key, value in os.environ.items() if key not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")
    }
    env.update(
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="token" if token else "disabled",
        # Jobs run `python` from PATH, as on a cluster whose image has al_ray's Python first.
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
    )
    if token:
        env["RAY_AUTH_TOKEN"] = token

    command = [
        str(VENV_BIN / "ray"), "start", "--head", "--block",
        "--node-ip-address", "127.0.0.1",
        "--port", str(free_port()),
        "--dashboard-host", "127.0.0.1",
        "--dashboard-port", str(dashboard_port),
        "--dashboard-agent-listen-port", str(free_port()),
        "--ray-client-server-port", str(free_port()),
        "--num-cpus", str(num_cpus),
        "--temp-dir", str(temp_dir),
        "--disable-usage-stats",
    ]

    log_path = temp_dir / "ray_start.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    head = HeadNode(f"http://127.0.0.1:{dashboard_port}", temp_dir, process, log_path, token, env)

    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(head.address, token):
        if process.poll() is not None or time.monotonic() > deadline:
            output = log_path.read_text(errors="replace")[-3000:]
            head.stop()
            raise RuntimeError(f"ray start --head did not come up (exit {process.poll()}):\n{output}")
        time.sleep(0.5)
    return head
