"""The model registry on a real SQLite MLflow store: register, alias, reload, list, CLI."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import struct
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from al_ray.cli import main
from al_ray.errors import ConfigError, DataError, TrackingError
from al_ray.loop.model_io import save_model
from al_ray.models import SklearnClassifier
from al_ray.tracking import MlflowTracker
from al_ray.tracking.registry import (
    ModelRegistry,
    check_reachable,
    labeled_hash,
    model_pip_requirements,
)

CLASSES = ["cat", "dog", "owl"]
NAME = "demo-margin"
# Three classes on a line: cat near 0, dog near 5, owl near 10.
FEATURES = np.array([[0.0], [0.5], [5.0], [5.5], [10.0], [10.5], [1.0], [4.5], [9.5]])
TARGETS = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2])
PROBE = np.array([[0.2], [5.2], [9.8], [2.5]])


def _lineage(row_ids, parent: str) -> dict[str, str]:
    return {
        "n_labeled": str(len(row_ids)),
        "labeled_hash": labeled_hash(row_ids),
        "strategy": "margin",
        "seed": "3",
        "parent_version": parent,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A run's output folder with two registered rounds: round 1's parent is round 0."""
    folder = tmp_path_factory.mktemp("run")
    uri = f"sqlite:///{(folder / 'mlflow.db').resolve()}"
    tracker = MlflowTracker(uri, "al_ray-demo", artifact_location=(folder / "mlartifacts").resolve().as_uri())
    run_id = tracker.start("demo-margin", {"seed": 3})
    registry = ModelRegistry(uri)

    models = {}
    parent = ""
    for round_index, n_rows in ((0, 6), (1, 9)):
        model = SklearnClassifier(LogisticRegression(), CLASSES).fit(FEATURES[:n_rows], TARGETS[:n_rows])
        path = folder / "models" / f"round_{round_index:04d}.pkl"
        save_model(model, path)
        metrics = {"accuracy": 0.5 + 0.25 * round_index, "n_labeled": float(n_rows)}
        tracker.log_round(round_index, metrics)
        version = registry.register_round(
            run_id,
            path,
            name=NAME,
            round_index=round_index,
            lineage=_lineage(list(range(n_rows)), parent),
            metrics=metrics,
            classes=CLASSES,
        )
        models[version] = (model, path)
        parent = version
    registry.set_alias(NAME, "champion", "1")
    registry.set_alias(NAME, "challenger", 2)
    return {"folder": folder, "uri": uri, "run_id": run_id, "registry": registry, "models": models}


def test_register_versions_numbered(store):
    assert sorted(store["models"]) == ["1", "2"]


def test_list_versions_lineage(store):
    first, second = store["registry"].list_versions(NAME)
    assert (first.version, second.version) == (1, 2)
    assert (first.round_index, second.round_index) == (0, 1)
    assert (first.n_labeled, second.n_labeled) == (6, 9)
    assert (first.accuracy, second.accuracy) == (0.5, 0.75)
    assert (first.parent_version, second.parent_version) == (None, "1")
    assert first.aliases == ("champion",)
    assert second.aliases == ("challenger",)
    assert second.strategy == "margin"
    assert second.run_id == store["run_id"]
    assert second.tags["labeled_hash"] == labeled_hash(range(9))
    assert second.tags["seed"] == "3"
    assert second.tags["run_id"] == store["run_id"]
    assert second.metrics == {"accuracy": 0.75, "n_labeled": 9.0}


def test_register_again_same_version(store):
    registry = store["registry"]
    _, path = store["models"]["2"]
    again = registry.register_round(
        store["run_id"],
        path,
        name=NAME,
        round_index=1,
        lineage=_lineage(list(range(9)), "1"),
        metrics={"accuracy": 0.75},
        classes=CLASSES,
    )
    assert again == "2"
    assert [info.version for info in registry.list_versions(NAME)] == [1, 2]


@pytest.mark.parametrize("version_or_alias", ["2", 2, "challenger"], ids=["text", "number", "alias"])
def test_load_same_predictions(store, version_or_alias):
    original, _ = store["models"]["2"]
    loaded = store["registry"].load(NAME, version_or_alias)
    assert isinstance(loaded, SklearnClassifier)
    assert loaded.classes == tuple(CLASSES)
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), original.predict_proba(PROBE))


def test_load_champion_is_round_zero(store):
    original, _ = store["models"]["1"]
    loaded = store["registry"].load(NAME, "champion")
    np.testing.assert_array_equal(loaded.predict_proba(PROBE), original.predict_proba(PROBE))


def test_pyfunc_columns_are_classes(store):
    original, _ = store["models"]["2"]
    frame = store["registry"].load_pyfunc(NAME, "challenger").predict(PROBE)
    assert list(frame.columns) == CLASSES
    np.testing.assert_array_equal(frame.to_numpy(), original.predict_proba(PROBE))


def test_requirements_passed_not_inferred(store):
    folder = Path(urlparse(store["registry"].artifact_uri(NAME, "1")).path)
    lines = (folder / "requirements.txt").read_text().split()
    assert f"numpy=={np.__version__}" in lines
    assert any(line.startswith("al_ray==") for line in lines)
    assert any(line.startswith("mlflow==") for line in lines)


def test_pip_requirements_extra():
    requirements = model_pip_requirements(["torch==2.13.0"])
    assert requirements[-1] == "torch==2.13.0"
    assert f"numpy=={np.__version__}" in requirements


def test_global_tracking_uri_restored(store):
    import mlflow

    before = mlflow.get_tracking_uri()
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    store["registry"].load_pyfunc(NAME, "1")
    assert mlflow.get_tracking_uri() == before
    assert os.environ.get("MLFLOW_TRACKING_URI") == env_before


def test_alias_unknown(store):
    with pytest.raises(ConfigError, match="unknown alias 'best'; use one of champion, challenger"):
        store["registry"].set_alias(NAME, "best", "1")


def test_describe_missing_version(store):
    with pytest.raises(TrackingError, match="version 7 of 'demo-margin' not found; versions: 1, 2"):
        store["registry"].describe(NAME, "7")


def test_describe_missing_model(store):
    with pytest.raises(TrackingError, match="registered model 'other' not found .*registered models: demo-margin"):
        store["registry"].describe("other", "1")


def test_registered_models(store):
    assert store["registry"].registered_models() == [NAME]


def test_register_missing_lineage(store):
    _, path = store["models"]["1"]
    with pytest.raises(TrackingError, match=r"lineage is missing the key\(s\) \['seed'\]"):
        store["registry"].register_round(
            store["run_id"],
            path,
            name=NAME,
            round_index=5,
            lineage={"n_labeled": "1", "labeled_hash": "x", "strategy": "margin", "parent_version": "2"},
            metrics={},
            classes=CLASSES,
        )


# labeled_hash


def test_labeled_hash_hand_checked():
    # sha256 of the bytes 01 00.. 02 00.. 03 00.. (three little-endian int64), first 16 hex digits.
    packed = struct.pack("<3q", 1, 2, 3)
    assert packed.hex() == "010000000000000002000000000000000300000000000000"
    assert labeled_hash([3, 1, 2]) == hashlib.sha256(packed).hexdigest()[:16]
    assert labeled_hash([3, 1, 2]) == "e2e2033ae7e19d68"


def test_labeled_hash_empty():
    assert labeled_hash([]) == hashlib.sha256(b"").hexdigest()[:16]


def test_labeled_hash_rejects_floats():
    with pytest.raises(DataError, match="row_ids must be integers, got an array of dtype float64"):
        labeled_hash([1.0, 2.5])


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50), st.randoms(use_true_random=False))
def test_labeled_hash_order_and_repeats(row_ids, random):
    shuffled = row_ids + row_ids[: len(row_ids) // 2]
    random.shuffle(shuffled)
    assert labeled_hash(shuffled) == labeled_hash(row_ids)


# Reachability


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.timeout(30)
def test_unreachable_server():
    uri = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(TrackingError, match=rf"MLflow tracking server '{uri}' is unreachable: .*start the server"):
        ModelRegistry(uri, timeout_s=2.0)


def test_sqlite_folder_missing(tmp_path):
    uri = f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}"
    with pytest.raises(TrackingError, match=r"the folder .*absent does not exist; create it"):
        check_reachable(uri)


def test_sqlite_file_required(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    check_reachable(uri)
    with pytest.raises(TrackingError, match=r"not found: no file .*mlflow.db"):
        check_reachable(uri, existing=True)


# CLI


def _fails(argv, capsys, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_cli_list(store, capsys):
    assert main(["models", "list", "--output", str(store["folder"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"registered model: {NAME}"
    assert lines[1].split() == ["version", "aliases", "round", "n_labeled", "accuracy", "strategy", "parent"]
    assert lines[2].split() == ["1", "champion", "0", "6", "0.5000", "margin", "-"]
    assert lines[3].split() == ["2", "challenger", "1", "9", "0.7500", "margin", "1"]
    assert len(lines) == 4


def test_cli_show_alias(store, capsys):
    assert main(["models", "show", "champion", "--tracking-uri", store["uri"], "--name", NAME]) == 0
    out = capsys.readouterr().out
    assert "version: 1\n" in out
    assert "aliases: champion\n" in out
    assert f"  labeled_hash: {labeled_hash(range(6))}\n" in out
    assert "  parent_version: \n" in out
    assert "  round: 0\n" in out
    assert f"  run_id: {store['run_id']}\n" in out
    assert "  accuracy: 0.5\n" in out
    assert "source: models:/m-" in out
    assert "artifact_uri: file://" in out


def test_cli_missing_version(store, capsys):
    _fails(
        ["models", "show", "7", "--output", str(store["folder"])],
        capsys,
        "version 7 of 'demo-margin' not found; versions: 1, 2",
    )


def test_cli_invalid_version(store, capsys):
    _fails(
        ["models", "show", "best", "--output", str(store["folder"])],
        capsys,
        "invalid version 'best'; use a version number or one of the aliases champion, challenger",
    )


def test_cli_no_store(capsys):
    _fails(["models", "list"], capsys, "pass --output RUN_DIR")


def test_cli_output_without_store(tmp_path, capsys):
    _fails(["models", "list", "--output", str(tmp_path)], capsys, "not found: no file", "mlflow.db")


def test_cli_several_models(store, tmp_path, capsys):
    # A copy of the module's store, which is already migrated, plus a second registered model.
    shutil.copy(store["folder"] / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ModelRegistry(uri).client.create_registered_model("demo-random")
    _fails(
        ["models", "list", "--tracking-uri", uri],
        capsys,
        "several registered models (demo-margin, demo-random)",
        "choose one with --name",
    )
