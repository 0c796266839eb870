"""CPU and memory that each overlay requests: the dev stack fits a laptop, the prod stack keeps realistic sizes.

The totals add the requests of every pod that runs. That is the head and the
autoscaler of each Ray cluster, and each worker group at its minimum (at rest)
or maximum (during a round) replica count. It is also the Deployments, the
StatefulSets and the RayJob's submitter pod. k8s/README.md states the dev
budget checked here.
"""

from __future__ import annotations

import re

import pytest
from conftest import of_kind, pod_specs

# The dev budget that k8s/README.md states: requests at rest, and with every worker group at its maximum.
DEV_BUDGET_AT_REST = {"cpu": 4.0, "memory_gib": 8.0}
DEV_BUDGET_AT_MAX = {"cpu": 4.0, "memory_gib": 10.0}

_MEMORY_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def cpu_cores(quantity: str | float) -> float:
    """Return a Kubernetes CPU quantity ("500m", "2") in cores."""
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_gib(quantity: str | int) -> float:
    """Return a Kubernetes memory quantity ("512Mi", "2Gi") in GiB."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti)?", str(quantity))
    assert match is not None, f"unsupported memory quantity {quantity!r}"
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""] / 2**30


def pod_requests(pod: dict) -> tuple[float, float]:
    """Return a pod's (cores, GiB) requests: its containers' sum, or its largest init container if larger."""
    cores = sum(cpu_cores(c["resources"]["requests"]["cpu"]) for c in pod["containers"])
    gib = sum(memory_gib(c["resources"]["requests"]["memory"]) for c in pod["containers"])
    for init in pod.get("initContainers", []):
        cores = max(cores, cpu_cores(init["resources"]["requests"]["cpu"]))
        gib = max(gib, memory_gib(init["resources"]["requests"]["memory"]))
    return cores, gib


def pod_counts(resource: dict, *, at_max: bool) -> list[tuple[str, int, dict]]:
    """Return ``(where, running pods, pod spec)`` for every pod template of ``resource``."""
    spec = resource.get("spec", {})
    kind = resource["kind"]
    counts = []
    for where, pod in pod_specs(resource):
        if kind in ("RayCluster", "RayService"):
            cluster = spec if kind == "RayCluster" else spec["rayClusterConfig"]
            groups = {f"workerGroupSpecs[{g['groupName']}]": g for g in cluster["workerGroupSpecs"]}
            group = groups.get(where.removeprefix("rayClusterConfig."))
            if group is None:
                count = 1  # the head
            elif at_max:
                count = group["maxReplicas"]
            else:
                count = group["minReplicas"]
        elif kind in ("Deployment", "StatefulSet"):
            count = spec.get("replicas", 1)
        elif kind == "RayCronJob":
            count = 0 if spec.get("suspend") else 1
        else:
            count = 1
        counts.append((where, count, pod))
    return counts


def total_requests(documents: list[dict], *, at_max: bool) -> dict[str, float]:
    cores = gib = 0.0
    for resource in documents:
        for _where, count, pod in pod_counts(resource, at_max=at_max):
            pod_cores, pod_gib = pod_requests(pod)
            cores += count * pod_cores
            gib += count * pod_gib
        clusters = [resource["spec"]] if resource["kind"] == "RayCluster" else []
        if resource["kind"] == "RayService":
            clusters = [resource["spec"]["rayClusterConfig"]]
        for cluster in clusters:
            if cluster.get("enableInTreeAutoscaling"):
                # KubeRay runs the autoscaler as a sidecar of the head with these requests.
                requests = cluster["autoscalerOptions"]["resources"]["requests"]
                cores += cpu_cores(requests["cpu"])
                gib += memory_gib(requests["memory"])
    return {"cpu": round(cores, 3), "memory_gib": round(gib, 3)}


def test_quantities_parse():
    assert cpu_cores("500m") == 0.5
    assert cpu_cores("2") == 2.0
    assert cpu_cores(1) == 1.0
    assert memory_gib("512Mi") == 0.5
    assert memory_gib("2560Mi") == 2.5
    assert memory_gib("2Gi") == 2.0


def test_pod_requests_count_init_containers():
    pod = {
        "containers": [{"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}}],
        "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "128Mi"}}}],
    }
    assert pod_requests(pod) == (1.0, 0.25)


def test_dev_stack_fits_budget_at_rest(rendered):
    # dev-serve is the whole dev stack, the RayService included.
    totals = total_requests(rendered["dev-serve"], at_max=False)
    assert totals["cpu"] <= DEV_BUDGET_AT_REST["cpu"], totals
    assert totals["memory_gib"] <= DEV_BUDGET_AT_REST["memory_gib"], totals


def test_dev_stack_fits_budget_at_max(rendered):
    totals = total_requests(rendered["dev-serve"], at_max=True)
    assert totals["cpu"] <= DEV_BUDGET_AT_MAX["cpu"], totals
    assert totals["memory_gib"] <= DEV_BUDGET_AT_MAX["memory_gib"], totals


def test_dev_has_no_gpu_and_idle_workers(rendered):
    cluster = of_kind(rendered["dev"], "RayCluster")[0]["spec"]
    groups = {group["groupName"]: group for group in cluster["workerGroupSpecs"]}
    assert groups["gpu"]["minReplicas"] == groups["gpu"]["maxReplicas"] == 0
    assert groups["cpu"]["minReplicas"] == 0
    assert groups["cpu"]["maxReplicas"] == 1


@pytest.mark.parametrize("overlay", ["dev", "dev-serve"])
def test_dev_shm_within_memory_limit(rendered, overlay):
    # A memory-backed emptyDir counts against the container's memory limit.
    for resource in rendered[overlay]:
        for where, pod in pod_specs(resource):
            volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
            for container in pod["containers"]:
                for mount in container.get("volumeMounts", []):
                    if mount["mountPath"] != "/dev/shm":
                        continue
                    size = memory_gib(volumes[mount["name"]]["emptyDir"]["sizeLimit"])
                    limit = memory_gib(container["resources"]["limits"]["memory"])
                    assert size <= limit / 2, f"{resource['metadata']['name']} {where}: /dev/shm {size} GiB of {limit} GiB"


def test_prod_keeps_realistic_sizes(rendered):
    cluster = of_kind(rendered["prod"], "RayCluster")[0]["spec"]
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert (cpu_cores(head["cpu"]), memory_gib(head["memory"])) == (2.0, 8.0)
    groups = {group["groupName"]: group for group in cluster["workerGroupSpecs"]}
    cpu_worker = groups["cpu"]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert (cpu_cores(cpu_worker["cpu"]), memory_gib(cpu_worker["memory"])) == (4.0, 16.0)
    assert groups["cpu"]["minReplicas"] == 1
    assert groups["gpu"]["maxReplicas"] == 4
    # The prod stack at rest requests far more than the dev budget.
    totals = total_requests(rendered["prod-serve"], at_max=False)
    assert totals["cpu"] > 2 * DEV_BUDGET_AT_REST["cpu"], totals
    assert totals["memory_gib"] > 4 * DEV_BUDGET_AT_REST["memory_gib"], totals
