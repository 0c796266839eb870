"""KubeRay resources against the CRDs' OpenAPI schemas, with unknown fields rejected as a strict API server does.

An API server prunes or rejects fields that a structural schema does not
declare, except under ``x-kubernetes-preserve-unknown-fields: true``. The
schemas are made strict the same way: every object schema that lists
``properties`` gets ``additionalProperties: false`` unless it preserves
unknown fields or sets ``additionalProperties`` itself. CEL rules
(``x-kubernetes-validations``) are not evaluated here.
"""

from __future__ import annotations

import copy
import hashlib
import re

import jsonschema
import pytest
import yaml
from conftest import K8S, OVERLAYS, SERVE_OVERLAYS, of_kind

CRDS = K8S / "crds"
KINDS = {
    "RayCluster": "ray.io_rayclusters.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "RayService": "ray.io_rayservices.yaml",
    "RayCronJob": "ray.io_raycronjobs.yaml",
}


def _strict(schema: dict) -> dict:
    """Return a copy of ``schema`` in which objects reject properties they do not declare."""
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if (
            "properties" in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
            and "additionalProperties" not in node
        ):
            node["additionalProperties"] = False
        stack.extend(node.values())
    return schema


@pytest.fixture(scope="module")
def validators() -> dict[str, jsonschema.Draft4Validator]:
    """One strict validator per kind, from the storage version (v1) of its CRD."""
    result = {}
    for kind, file in KINDS.items():
        crd = yaml.load((CRDS / file).read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        assert crd["spec"]["names"]["kind"] == kind
        version = next(v for v in crd["spec"]["versions"] if v["storage"])
        assert version["name"] == "v1"
        result[kind] = jsonschema.Draft4Validator(_strict(version["schema"]["openAPIV3Schema"]))
    return result


def _errors(validator: jsonschema.Draft4Validator, resource: dict) -> list[str]:
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(resource)
    ]


def _ray_resources(rendered, overlay: str) -> list[dict]:
    return [document for document in rendered[overlay] if document["kind"] in KINDS]


def test_crds_unchanged_from_provenance():
    provenance = (CRDS / "PROVENANCE.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"\| (ray\.io_\w+\.yaml) \| [\d,]+ \| ([0-9a-f]{64}) \|", provenance))
    assert set(listed) == set(KINDS.values())
    for file, digest in listed.items():
        assert hashlib.sha256((CRDS / file).read_bytes()).hexdigest() == digest, f"{file} differs from PROVENANCE.md"


def test_strict_sets_additional_properties():
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"a": {"type": "string"}}},
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {}},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    strict = _strict(schema)
    assert strict["additionalProperties"] is False
    assert strict["properties"]["spec"]["additionalProperties"] is False
    assert "additionalProperties" not in strict["properties"]["open"]
    assert strict["properties"]["map"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in schema


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kuberay_resources_validate(rendered, validators, overlay):
    resources = _ray_resources(rendered, overlay)
    expected = set(KINDS) if overlay in SERVE_OVERLAYS else set(KINDS) - {"RayService"}
    assert sorted(resource["kind"] for resource in resources) == sorted(expected)
    for resource in resources:
        assert resource["apiVersion"] == "ray.io/v1"
        errors = _errors(validators[resource["kind"]], resource)
        assert errors == [], f"{resource['kind']}/{resource['metadata']['name']}: {errors}"


@pytest.mark.parametrize(
    ("kind", "path", "typo"),
    [
        ("RayCluster", ["spec"], "enableInTreeAutoscalling"),
        ("RayCluster", ["spec", "workerGroupSpecs", 0], "maxReplica"),
        ("RayCluster", ["spec", "headGroupSpec", "template", "spec", "containers", 0], "resource"),
        ("RayJob", ["spec"], "entrypont"),
        ("RayService", ["spec"], "serveConfig"),
        ("RayCronJob", ["spec", "jobTemplate"], "clusterSelecter"),
    ],
)
def test_typo_in_field_name_fails(rendered, validators, kind, path, typo):
    resource = copy.deepcopy(next(r for r in _ray_resources(rendered, "dev-serve") if r["kind"] == kind))
    node = resource
    for part in path:
        node = node[part]
    node[typo] = node.get(typo, 1)
    errors = _errors(validators[kind], resource)
    assert any(typo in error and "Additional properties are not allowed" in error for error in errors), errors


def test_wrong_type_fails(rendered, validators):
    cluster = copy.deepcopy(of_kind(rendered["dev"], "RayCluster")[0])
    cluster["spec"]["workerGroupSpecs"][0]["maxReplicas"] = "six"
    errors = _errors(validators["RayCluster"], cluster)
    assert any("spec/workerGroupSpecs/0/maxReplicas" in error for error in errors), errors
