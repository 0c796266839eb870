"""``al-ray check``: before a run, test that each location in a config can be reached and written.

Each item gets one result:

- data: the file exists and is readable, or the dataset is shipped;
- model: the strategy and the estimator (or committee, or torch network) are
  built here as the loop builds them, without fitting;
- output: a probe file is created and deleted;
- label store: a connection, and a write inside a transaction that is rolled back;
- MLflow: a server responds to a search request, or a file store's folder is writable;
- feedback: the SQLite file of ``serving.feedback.path`` can be written, when set;
- run: a warning when the output folder already contains a run, which
  ``al-ray run`` and ``al-ray submit`` continue only with ``--resume`` or
  ``--more-rounds N``;
- Ray: the dashboard responds to ``/api/version``.

Every probe is bounded by ``cluster.request_timeout_s``. When the cluster is
remote, a local-only location fails without being probed here, because the
cluster could not use it.

NOTE: the Ray item does not detect a head node whose dashboard agent is
missing, so that a job submission fails with "No available agent". In Ray
2.60 only the job endpoints that submit, stop or delete a job look up the
agent, and ``GET /api/jobs/`` reads the job list from the GCS without it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from al_ray.cluster.address import is_loopback_host, probe_dashboard, resolve_address
from al_ray.cluster.job_spec import resolve_working_dir
from al_ray.cluster.model_check import check_model
from al_ray.cluster.previous_run import store_file
from al_ray.cluster.storage import probe_readable, probe_writable
from al_ray.cluster.uris import Location, config_locations, local_only_problems
from al_ray.errors import AlRayError

__all__ = ["CheckResult", "format_result", "run_checks"]

logger = logging.getLogger(__name__)

Status = Literal["ok", "FAIL", "warn", "skip"]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one item's probe."""

    item: str
    status: Status
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


def format_result(result: CheckResult) -> str:
    """Return the result as one line, with its fix on a second line when it failed."""
    line = f"{result.item:<13} {result.status:<4}  {result.detail}"
    if result.fix:
        line += f"\n{'':<13} fix:  {result.fix}"
    return line


def run_checks(config_path: str | Path, address: str | None = None) -> list[CheckResult]:
    """Probe every location of the config at ``config_path``, and the Ray dashboard if an address is known.

    Raises
    ------
    ConfigError
        When the config itself is invalid.
    """
    from al_ray.config import load_config
    from al_ray.loop.runner import default_output_dir

    config = load_config(config_path)
    timeout_s = config.cluster.request_timeout_s
    output_dir = default_output_dir(config)
    ray_result, remote = _check_ray(address, config, timeout_s)

    locations = config_locations(config, output_dir)
    working_dir = resolve_working_dir(config.cluster, Path(config_path))
    results = []
    for location in locations:
        item = _ITEM_NAMES[location.key]
        problems = (
            local_only_problems([location], working_dir=working_dir, shared_paths=config.cluster.shared_paths)
            if remote
            else []
        )
        if problems:
            problem = problems[0]
            detail = f"{location.key} {location.value!r} {problem.reason}"
            results.append(CheckResult(item, "FAIL", detail, problem.fix))
        else:
            results.append(_probe(item, location, timeout_s))
        if location.key in ("data.dataset", "data.path"):
            results.append(_check_model(config))
    if not config.tracking.enabled:
        results.append(CheckResult("mlflow", "skip", "tracking.enabled is false"))
    results.append(_check_previous_run(config, output_dir))
    results.append(ray_result)
    return results


_ITEM_NAMES = {
    "data.dataset": "data",
    "data.path": "data",
    "labels.store": "label store",
    "tracking.uri": "mlflow",
    "output": "output",
    "serving.feedback.path": "feedback",
}


def _check_model(config) -> CheckResult:
    from al_ray.errors import ModelError, StrategyError

    try:
        built = check_model(config)
    except (ModelError, StrategyError) as error:
        # These messages name the value and its fix themselves.
        return CheckResult("model", "FAIL", str(error))
    return CheckResult("model", "ok" if built.built else "skip", built.detail)


def _check_previous_run(config, output_dir: Path) -> CheckResult:
    store = store_file(config, output_dir)
    if store is None:
        return CheckResult("run", "skip", "labels.store is a database URL; whether it contains a run is not checked")
    if not store.exists():
        return CheckResult("run", "ok", f"no run in {store} yet; `al-ray run` and `al-ray submit` start one")
    key = "labels.store" if config.labels.store is not None else "output"
    return CheckResult(
        "run", "warn",
        f"{store} already contains a run; `al-ray run` and `al-ray submit` continue it only with "
        "--more-rounds N (N rounds past its last completed one) or --resume (up to its loop.rounds)",
        f"to start a new run instead, set {key} to another location"
        + (" (`al-ray run` also takes --output)" if key == "output" else ""),
    )


def _check_ray(address: str | None, config, timeout_s: float) -> tuple[CheckResult, bool]:
    """Return the Ray result and whether the cluster is another machine."""
    try:
        resolved = resolve_address(address, config.cluster.address)
    except AlRayError as error:
        if address is None and config.cluster.address is None and not os.environ.get("RAY_ADDRESS"):
            return CheckResult("ray", "skip", "no cluster address; `al-ray run` starts Ray on this machine"), False
        return CheckResult("ray", "FAIL", str(error)), False
    remote = not is_loopback_host(urllib.parse.urlparse(resolved).hostname)
    try:
        dashboard = probe_dashboard(resolved, timeout_s=timeout_s)
    except AlRayError as error:
        return CheckResult("ray", "FAIL", str(error)), remote
    auth = "token authentication on" if dashboard.token_required else "token authentication off"
    return CheckResult("ray", "ok", f"Ray {dashboard.ray_version} at {resolved} ({auth})"), remote


def _probe(item: str, location: Location, timeout_s: float) -> CheckResult:
    try:
        if location.kind == "shipped":
            return _check_shipped(location)
        if location.key == "data.path":
            return CheckResult(item, "ok", f"{location.value} is readable ({probe_readable(location.value)})")
        if location.key == "output":
            if location.kind == "object_store":
                return CheckResult(
                    item, "FAIL", f"{location.value} is object storage; the loop writes its output folder as local files",
                    "set output to a local folder or a shared mount (NFS)",
                )
            return CheckResult(item, "ok", f"{location.value}: {probe_writable(location.value)}")
        if location.kind == "sqlite":
            return CheckResult(item, "ok", _check_sqlite_file(location))
        if location.kind == "database":
            return _check_database(item, location, timeout_s)
        if location.kind == "mlflow_server":
            return _check_mlflow_server(location, timeout_s)
        if location.kind == "path":
            folder = location.local_path
            return CheckResult(item, "ok", f"{location.value}: {probe_writable(str(folder))}")
        return CheckResult(item, "skip", f"{location.value}: al-ray check cannot probe this kind of store")
    except AlRayError as error:
        return CheckResult(item, "FAIL", str(error), _FIXES.get(location.key, ""))


_FIXES = {
    "data.path": "check the path, or the object store's credentials (AWS_*, GOOGLE_APPLICATION_CREDENTIALS)",
    "output": "choose a folder this user can write, or create it",
    "labels.store": "check the URL, the server and the user's rights",
    "tracking.uri": "check the URI and that the MLflow server runs",
    "serving.feedback.path": "choose a file in a folder this user can write",
}


def _check_shipped(location: Location) -> CheckResult:
    from al_ray.data.shipped import SHIPPED_DATASETS

    if location.value not in SHIPPED_DATASETS:
        return CheckResult(
            "data", "FAIL", f"data.dataset {location.value!r} is not a shipped dataset",
            f"use one of {', '.join(sorted(SHIPPED_DATASETS))}, or data.path for your own file",
        )
    return CheckResult("data", "ok", f"shipped dataset {location.value!r} (part of al_ray)")


def _check_sqlite_file(location: Location) -> str:
    """Write inside a rolled-back transaction if the file exists; otherwise check that its folder is writable."""
    from al_ray.errors import LabelStoreError

    path = location.local_path
    if path is None:
        raise LabelStoreError(f"{location.key} {location.value!r} names no file; name a SQLite file")
    if not path.exists():
        folder = next(parent for parent in path.absolute().parents if parent.exists())
        if not os.access(folder, os.W_OK | os.X_OK):
            raise LabelStoreError(f"{path} does not exist and {folder} is not writable, so the run cannot create it")
        creator = "the Serve app" if location.key == "serving.feedback.path" else "the run"
        return f"{path} will be created by {creator} ({folder} is writable)"
    table = f"al_ray_check_{uuid.uuid4().hex[:8]}"
    try:
        # isolation_level=None: the sqlite3 module would commit the CREATE TABLE
        # on its own; here BEGIN and ROLLBACK are explicit.
        connection = sqlite3.connect(path, timeout=5, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(f"CREATE TABLE {table} (id INTEGER)")
            connection.execute(f"INSERT INTO {table} VALUES (1)")
            connection.execute("ROLLBACK")
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise LabelStoreError(f"cannot write to SQLite file {path}: {error}") from None
    return f"{path}: wrote in a transaction and rolled it back"


def _check_database(item: str, location: Location, timeout_s: float) -> CheckResult:
    import sqlalchemy as sa

    url = location.raw or location.value
    try:
        engine = sa.create_engine(url, connect_args=_connect_args(url, timeout_s))
    except (ImportError, sa.exc.ArgumentError) as error:
        return CheckResult(item, "FAIL", f"{location.value}: {error}", "install the driver the URL names")
    table = f"al_ray_check_{uuid.uuid4().hex[:8]}"
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                if engine.dialect.name == "postgresql":
                    # PostgreSQL rolls back DDL with the transaction, so this leaves nothing behind.
                    connection.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER)")
                    connection.exec_driver_sql(f"INSERT INTO {table} VALUES (1)")
                    done = "wrote in a transaction and rolled it back"
                else:
                    connection.exec_driver_sql("SELECT 1")
                    done = f"connected (writes are not probed on {engine.dialect.name})"
            finally:
                transaction.rollback()
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return CheckResult(item, "FAIL", f"{location.value}: {reason}", _FIXES["labels.store"])
    finally:
        engine.dispose()
    return CheckResult(item, "ok", f"{location.value}: {done}")


def _connect_args(url: str, timeout_s: float) -> dict:
    backend = url.split("://", 1)[0].split("+", 1)[0]
    if backend == "postgresql":
        return {"connect_timeout": max(1, int(timeout_s))}
    return {}


def _check_mlflow_server(location: Location, timeout_s: float) -> CheckResult:
    uri = (location.raw or location.value).rstrip("/")
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/experiments/search",
        data=json.dumps({"max_results": 1}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            return CheckResult(
                "mlflow", "FAIL", f"{location.value} refused the request (HTTP {error.code})",
                "export MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
            )
        return CheckResult(
            "mlflow", "FAIL", f"{location.value} responded HTTP {error.code} to an experiment search",
            "check that the URI is an MLflow tracking server",
        )
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return CheckResult(
            "mlflow", "FAIL", f"{location.value} is unreachable: {reason} (timeout {timeout_s:g} s)",
            _FIXES["tracking.uri"],
        )
    return CheckResult("mlflow", "ok", f"{location.value} responded to an experiment search")
