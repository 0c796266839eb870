"""Core Kubernetes resources of every overlay, validated strictly by kubernetes-validate.

Strict mode rejects fields that the Kubernetes API's schema does not declare.
The version is pinned to a release whose schemas kubernetes-validate ships,
so a newer package does not change what passes.
"""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from conftest import OVERLAYS

KUBERNETES_VERSION = "1.33.0"
CUSTOM_GROUPS = ("ray.io/",)


def _core(rendered, overlay: str) -> list[dict]:
    return [r for r in rendered[overlay] if not r["apiVersion"].startswith(CUSTOM_GROUPS)]


def test_pinned_version_is_shipped():
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_resources_validate_strictly(rendered, overlay):
    resources = _core(rendered, overlay)
    kinds = {resource["kind"] for resource in resources}
    assert {"Namespace", "Deployment", "Service", "StatefulSet", "ConfigMap", "PersistentVolumeClaim"} <= kinds
    for resource in resources:
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{resource['kind']}/{resource['metadata']['name']}: {error.message} at {list(error.path)}")


@pytest.mark.parametrize(
    ("kind", "path", "typo"),
    [
        ("Deployment", ["spec", "template", "spec", "containers", 0], "resource"),
        ("Deployment", ["spec"], "replica"),
        ("StatefulSet", ["spec"], "volumeClaimTemplate"),
        ("Service", ["spec"], "selectors"),
    ],
)
def test_typo_in_core_resource_fails(rendered, kind, path, typo):
    resource = copy.deepcopy(next(r for r in _core(rendered, "dev") if r["kind"] == kind))
    node = resource
    for part in path:
        node = node[part]
    node[typo] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match=typo):
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
