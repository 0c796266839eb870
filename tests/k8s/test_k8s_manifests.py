"""The rendered overlays: what the stack must contain, generated files up to date, and resources on every container."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from conftest import (
    K8S,
    OVERLAYS,
    ROOT,
    SERVE_OVERLAYS,
    STACK_OVERLAYS,
    environment,
    of_kind,
    pod_specs,
    ray_cluster_specs,
    render_overlay,
)

from al_ray.cli import build_parser
from al_ray.cluster import k8s_render
from al_ray.config import load_config

ENTRYPOINT = "python -m al_ray.cli run /configs/mnist.yaml"
# Every firing of the schedule runs the same command: one round past the last completed one.
SCHEDULED_ENTRYPOINT = ENTRYPOINT + " --more-rounds 1"
# Secrets that the prod overlay expects to exist in its namespace, created outside kustomize.
EXTERNAL_SECRETS = {"al-ray-db": "password", "al-ray-ray-token": "auth_token"}


def _one(documents: list[dict], kind: str, name_prefix: str = "") -> dict:
    matches = [document for document in of_kind(documents, kind) if document["metadata"]["name"].startswith(name_prefix)]
    assert len(matches) == 1, f"expected one {kind} named {name_prefix}*, found {[m['metadata']['name'] for m in matches]}"
    return matches[0]


def test_generated_files_fresh():
    stale = k8s_render.stale_files(ROOT)
    assert stale == [], f"generated files are stale: {[str(path) for path in stale]}; run {k8s_render.REFRESH_COMMAND}"


def _inputs(tmp_path, overrides: str) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mnist.yaml").write_text((ROOT / "configs" / "mnist.yaml").read_text())
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "config-overrides.yaml").write_text(overrides)


def test_render_check_reports_stale(tmp_path, capsys):
    # A copy of the inputs without the generated files: --check names them and exits 1.
    _inputs(tmp_path, (K8S / "config-overrides.yaml").read_text())

    assert k8s_render.main(["--root", str(tmp_path), "--check"]) == 1
    errors = capsys.readouterr().err
    assert "stale: k8s/base/configs/mnist.yaml" in errors
    assert "stale: k8s/serve/generated/rayservice-serve-config.yaml" in errors
    assert k8s_render.REFRESH_COMMAND in errors

    assert k8s_render.main(["--root", str(tmp_path)]) == 0
    assert k8s_render.stale_files(tmp_path) == []
    assert k8s_render.main(["--root", str(tmp_path), "--check"]) == 0


def test_render_rejects_unknown_config_key(tmp_path, capsys):
    _inputs(tmp_path, "tracking:\n  urii: http://mlflow:5000\n")

    assert k8s_render.main(["--root", str(tmp_path)]) == 2
    assert "tracking.urii" in capsys.readouterr().err
    assert not (tmp_path / "k8s" / "base").exists()


@pytest.mark.slow
def test_render_cli_runs_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "al_ray.cluster.k8s_render", "--check"], check=False, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_has_the_stack(rendered, overlay):
    documents = rendered[overlay]
    kinds = {document["kind"] for document in documents}
    expected = {"Namespace", "RayCluster", "RayJob", "RayCronJob", "Deployment", "Service",
                "StatefulSet", "ConfigMap", "PersistentVolumeClaim"}
    assert expected <= kinds
    # The RayService comes only with the -serve overlay, applied after the first round.
    assert ("RayService" in kinds) == (overlay in SERVE_OVERLAYS)
    namespace = f"al-ray-{environment(overlay)}"
    for document in documents:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == namespace, document["metadata"]["name"]
    deployments = {document["metadata"]["name"] for document in of_kind(documents, "Deployment")}
    assert deployments == {"mlflow", "al-ray-labeling"}
    services = {document["metadata"]["name"] for document in of_kind(documents, "Service")}
    assert services == {"mlflow", "al-ray-labeling", "postgres"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_job_and_cron_entrypoints(rendered, overlay):
    documents = rendered[overlay]
    job = _one(documents, "RayJob")["spec"]
    cron = _one(documents, "RayCronJob")["spec"]
    cluster = _one(documents, "RayCluster")
    assert job["entrypoint"] == ENTRYPOINT
    assert cron["jobTemplate"]["entrypoint"] == SCHEDULED_ENTRYPOINT
    assert job["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
    assert cron["jobTemplate"]["clusterSelector"] == job["clusterSelector"]
    assert cron["schedule"] == "0 3 * * *"


def test_scheduled_entrypoint_parses():
    # The words after `python -m al_ray.cli` are what the al-ray command parses in the job.
    words = SCHEDULED_ENTRYPOINT.split()
    assert words[:3] == ["python", "-m", "al_ray.cli"]
    args = build_parser().parse_args(words[3:])
    assert (args.command, str(args.config), args.more_rounds, args.resume) == ("run", "/configs/mnist.yaml", 1, False)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dev_suspends_schedule(rendered, overlay):
    spec = _one(rendered[overlay], "RayCronJob")["spec"]
    if environment(overlay) == "dev":
        assert spec["suspend"] is True
    else:
        assert "suspend" not in spec


@pytest.mark.parametrize("stack", STACK_OVERLAYS)
def test_serve_overlay_adds_only_rayservice(rendered, stack):
    # Applying the -serve overlay after the stack must change nothing but add the RayService.
    def by_name(documents):
        return {(d["kind"], d["metadata"]["name"]): d for d in documents}

    stack_documents = by_name(rendered[stack])
    serve_documents = by_name(rendered[f"{stack}-serve"])
    assert set(serve_documents) - set(stack_documents) == {("RayService", "al-ray-serve")}
    assert set(stack_documents) <= set(serve_documents)
    for key, document in stack_documents.items():
        assert serve_documents[key] == document, key


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cluster_autoscales_cpu_and_gpu(rendered, overlay):
    spec = _one(rendered[overlay], "RayCluster")["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    groups = {group["groupName"]: group for group in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for group in groups.values():
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]
    gpu_limits = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu_limits["nvidia.com/gpu"] == "1"
    assert groups["gpu"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0-gpu")
    assert groups["cpu"]["maxReplicas"] == {"dev": 1, "prod": 20}[environment(overlay)]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ray_pods_mount_memory_shm(rendered, overlay):
    for resource in rendered[overlay]:
        for cluster in ray_cluster_specs(resource):
            templates = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
            for template in templates:
                volumes = {volume["name"]: volume for volume in template["spec"]["volumes"]}
                container = template["spec"]["containers"][0]
                mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
                assert "/dev/shm" in mounts, f"{resource['metadata']['name']}: {container['name']} has no /dev/shm"
                assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(rendered, overlay):
    checked = 0
    for resource in rendered[overlay]:
        for where, pod in pod_specs(resource):
            for container in pod.get("initContainers", []) + pod["containers"]:
                label = f"{resource['kind']}/{resource['metadata']['name']} {where} container {container['name']}"
                resources = container.get("resources", {})
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{label} lacks {part} cpu and memory"
                checked += 1
        # KubeRay adds the autoscaler as a sidecar of the head; its resources come from autoscalerOptions.
        for cluster in ray_cluster_specs(resource):
            if cluster.get("enableInTreeAutoscaling"):
                resources = cluster.get("autoscalerOptions", {}).get("resources", {})
                for part in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources.get(part, {})), (
                        f"{resource['metadata']['name']}: autoscalerOptions lacks {part}"
                    )
                checked += 1
    # The stack: head, 2 worker groups and autoscaler, 2 submitters, 3 services; the RayService adds 3.
    assert checked >= (12 if overlay in SERVE_OVERLAYS else 9)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_tagged(rendered, overlay):
    for resource in rendered[overlay]:
        for where, pod in pod_specs(resource):
            for container in pod["containers"]:
                image = container["image"]
                label = f"{resource['metadata']['name']} {where}: {image}"
                name, _, tag = image.rpartition(":")
                assert name, label
                assert tag, label
                assert tag != "latest", label
                assert "/" not in tag, label


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_generated_only_in_dev(rendered, overlay):
    secrets = {s["metadata"]["name"].rsplit("-", 1)[0]: s for s in of_kind(rendered[overlay], "Secret")}
    if environment(overlay) == "prod":
        assert secrets == {}
        return
    assert set(secrets) == set(EXTERNAL_SECRETS)
    for name, key in EXTERNAL_SECRETS.items():
        assert set(secrets[name]["data"]) == {key}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_references_resolve(rendered, overlay):
    documents = rendered[overlay]
    generated = {s["metadata"]["name"]: set(s["data"]) for s in of_kind(documents, "Secret")}
    available = generated or {name: {key} for name, key in EXTERNAL_SECRETS.items()}
    references = []
    for resource in documents:
        for where, pod in pod_specs(resource):
            for container in pod["containers"]:
                for variable in container.get("env", []):
                    selector = variable.get("valueFrom", {}).get("secretKeyRef")
                    if selector:
                        references.append((f"{resource['metadata']['name']} {where}", selector["name"], selector["key"]))
        for cluster in ray_cluster_specs(resource):
            references.append((resource["metadata"]["name"], cluster["authOptions"]["secretName"], "auth_token"))
    # The RayService adds its cluster's token Secret.
    assert len(references) >= (8 if overlay in SERVE_OVERLAYS else 7)
    for where, name, key in references:
        assert name in available, f"{where} names Secret {name}, which is neither rendered nor documented"
        assert key in available[name], f"{where} reads key {key} of Secret {name}, which has {available[name]}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_holds_loadable_config(rendered, overlay, tmp_path):
    documents = rendered[overlay]
    configs = [c for c in of_kind(documents, "ConfigMap") if c["metadata"]["name"].startswith("al-ray-configs-")]
    assert len(configs) == 1
    text = configs[0]["data"]["mnist.yaml"]
    path = tmp_path / "mnist.yaml"
    path.write_text(text)
    config = load_config(path)
    assert config.ray.address == "auto"
    assert config.tracking.uri == "http://mlflow:5000"
    assert config.labels.store.startswith("postgresql+psycopg://al_ray@postgres:5432/")
    assert config.serving.host == "0.0.0.0"

    # The head pod and the labeling pod mount this ConfigMap (its generated name) at /configs.
    name = configs[0]["metadata"]["name"]
    mounted = []
    for resource in documents:
        for where, pod in pod_specs(resource):
            for volume in pod.get("volumes", []):
                if volume.get("configMap", {}).get("name", "").startswith("al-ray-configs"):
                    assert volume["configMap"]["name"] == name, f"{resource['metadata']['name']} {where}"
                    mounted.append(resource["metadata"]["name"])
    assert sorted(mounted) == ["al-ray", "al-ray-labeling"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_labeling_service_command(rendered, overlay):
    deployment = next(d for d in of_kind(rendered[overlay], "Deployment") if d["metadata"]["name"] == "al-ray-labeling")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        "al-ray", "label", "serve", "/configs/mnist.yaml", "--host", "0.0.0.0", "--allow-remote", "--port", "8300"
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mlflow_uses_postgres_backend(rendered, overlay):
    deployment = next(d for d in of_kind(rendered[overlay], "Deployment") if d["metadata"]["name"] == "mlflow")
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--backend-store-uri=postgresql+psycopg://al_ray@postgres:5432/mlflow" in command
    init = next(c for c in of_kind(rendered[overlay], "ConfigMap") if c["metadata"]["name"].startswith("postgres-init"))
    assert "CREATE DATABASE mlflow" in init["data"]["init-databases.sql"]


def test_broken_overlay_fails_render(kubectl, tmp_path):
    # A patch aimed at a worker group that does not exist must fail the render, not vanish.
    overlay = tmp_path / "broken"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [str(K8S / "overlays" / "dev")],
        "patches": [{
            "target": {"kind": "RayCluster", "name": "al-ray"},
            "patch": "- {op: replace, path: /spec/workerGroupSpecs/5/maxReplicas, value: 3}",
        }],
    }))
    with pytest.raises(AssertionError, match="kubectl kustomize .* failed"):
        render_overlay(kubectl, overlay)


@pytest.mark.parametrize("overlay", SERVE_OVERLAYS)
def test_rayservice_serve_config_validates(rendered, overlay):
    from ray.serve.schema import ServeDeploySchema

    from al_ray.serving.export import validate_serve_config

    service = _one(rendered[overlay], "RayService")
    document = yaml.safe_load(service["spec"]["serveConfigV2"])
    validate_serve_config(document)
    schema = ServeDeploySchema.model_validate(document)
    assert schema.http_options.host == "0.0.0.0"
    # KubeRay's Serve Service targets the head's and workers' container port 8000.
    assert schema.http_options.port == 8000
    assert [app.name for app in schema.applications] == ["al_ray-version-champion", "al_ray-version-challenger", "al_ray"]
    assert {app.args.get("tracking_uri") for app in schema.applications[:2]} == {"http://mlflow:5000"}
