"""Measure the latency that the canary router adds on Ray Serve, and serving throughput.

For each dataset the script fits a logistic regression on a slice of it, saves
it with ``save_model`` and deploys it as the champion with
``al_ray.serving.deploy.deploy`` on 127.0.0.1. It then sends the same
payloads of 1 and 32 held-out rows (``--rows``) along these paths, one after
the other in one run:

- ``http_predict``: ``POST /predict`` through Serve's HTTP proxy and the
  router, which calls the version through a ``DeploymentHandle``. This is
  what a client of the router pays.
- ``version_handle``: ``predict`` on the version's ``ModelVersion``
  deployment through a ``DeploymentHandle`` from the driver, with the float64
  array the router would pass. This is the version without the router.
- ``router_ready``: the router's ``ready`` method through a handle. It
  returns the ``/versions`` view without calling a version, so it is the
  handle round trip to the router replica alone.
- ``http_versions``: ``GET /versions`` through the proxy and the router,
  with no version call: the fixed cost of the HTTP path.
- ``model_only``: ``predict_proba`` of the same model in the driver, the
  floor that any serving path adds to.

The router's ``/predict`` is a FastAPI route that takes the HTTP request
itself, so it has no method that a handle can call with rows. The router's
added latency is therefore ``http_predict`` minus ``version_handle``, which
includes the proxy, HTTP and JSON as well as the router's own work.

Latency is measured with one client sending requests back to back, over one
kept-alive HTTP connection, after ``--warm-up`` untimed requests. Request
bodies are encoded before the clock starts; decoding each response is timed.
Throughput is measured with ``--clients`` threads, each with its own
connection, sending requests back to back for ``--seconds``. After the
champion-only runs, a challenger fitted on another slice is attached at 10%
of the traffic (``--challenger-weight``) and ``http_predict`` is measured
again. Every response must carry one prediction per row, equal to what the
serving version's model predicts in the driver.

CPU columns are CPU milliseconds per request of each process of this Ray
session (read from ``/proc``, Linux only): the driver, which runs the client
threads and the driver's side of the handles, Serve's HTTP proxy, the router,
the versions, and the rest of Ray (controller, raylet, GCS). Ray must not be
shared with other drivers during the run, or their work is counted too.

Run:  python -m benchmarks.serve_latency [--datasets letter_recognition,mnist_test] [--rows 1,32]
Writes benchmarks/results/serve_latency.csv and prints markdown tables.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import platform
import re
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from al_ray.config import ServingConfig
from al_ray.data import load_shipped
from al_ray.loop.model_io import save_model
from al_ray.loop.outputs import write_csv_atomic
from al_ray.models.sklearn_adapter import SklearnClassifier, build_estimator
from al_ray.serving import VersionSpec
from al_ray.serving.app import MODEL_DEPLOYMENT, ROUTER_DEPLOYMENT
from al_ray.serving.deploy import deploy, replace_challenger, shutdown, version_app_name
from benchmarks._args import choice_list, int_list, non_negative_int, positive_int

__all__ = [
    "CSV_COLUMNS",
    "DATASETS",
    "PATHS",
    "CpuSampler",
    "build_parser",
    "main",
    "write_csv",
]

RESULTS = Path(__file__).resolve().parent / "results"
APP_NAME = "al_ray_bench"
DATASETS = ("letter_recognition", "mnist_test")
PATHS = ("http_predict", "version_handle", "router_ready", "http_versions", "model_only")
CSV_COLUMNS = (
    "dataset",
    "features",
    "split",
    "phase",
    "path",
    "rows_per_request",
    "clients",
    "requests",
    "errors",
    "seconds",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "requests_per_s",
    "rows_per_s",
    "challenger_share",
    "driver_cpu_ms",
    "proxy_cpu_ms",
    "router_cpu_ms",
    "version_cpu_ms",
    "other_ray_cpu_ms",
    "load_1min",
)
CPU_GROUPS = ("driver", "proxy", "router", "version", "other_ray")
CHAMPION, CHALLENGER = "1", "2"
# Payloads are cut from this many held-out rows, which follow the two models' training slices.
PROBE_ROWS = 1_000
DISTINCT_PAYLOADS = 32
REQUEST_TIMEOUT_S = 60.0


# Processes and their CPU time.


class CpuSampler:
    """Samples the CPU time of this process and its descendants, and sums it by Serve role.

    Ray started by this process (``ray.init(address="local")``) runs its GCS
    and raylet as children of the driver, and every worker as a child of the
    raylet, so the descendants are exactly this session's Ray processes. The
    role comes from the process title that Ray sets, such as
    ``ray::ServeReplica:<app>:Router``. Without ``/proc`` every sample is
    empty and the CPU columns stay blank.
    """

    def __init__(self) -> None:
        self.available = Path("/proc/self/stat").is_file()
        self._ticks_per_s = os.sysconf("SC_CLK_TCK") if self.available else 100

    def sample(self) -> dict[int, tuple[str, float]]:
        """Return the role and CPU seconds (user + system) used so far of each process, by pid."""
        if not self.available:
            return {}
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stream:
                    stat = stream.read()
            except OSError:  # the process exited while the folder was being read
                continue
            # The command name in brackets may contain spaces, so fields are split after its ")".
            fields = stat[stat.rindex(b")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
        driver = os.getpid()
        return {
            pid: ("driver" if pid == driver else _role(pid), count / self._ticks_per_s)
            for pid, count in ticks.items()
            if _descends_from(pid, driver, parents)
        }

    @staticmethod
    def used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
        """Return the CPU seconds each role used between two samples.

        Each process counts under its role in ``after``, because an idle Ray
        worker takes the title of the actor it becomes. A process that exited
        between the samples is missing from ``after``, so its CPU time is lost.
        """
        totals = dict.fromkeys(CPU_GROUPS, 0.0)
        for pid, (role, seconds) in after.items():
            totals[role] += seconds - before.get(pid, (role, 0.0))[1]
        return totals


def _descends_from(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = 0
    while pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        pid = parents.get(pid, 0)
        seen += 1
    return False


# Ray titles a replica process ray::ServeReplica:<app>:<deployment>. It appends ".<method>"
# to an actor's title while the actor runs a method (seen on the Serve controller), so the
# deployment name may be followed by a dot.
_REPLICA_TITLE = re.compile(rf"^ray::ServeReplica:.*:({ROUTER_DEPLOYMENT}|{MODEL_DEPLOYMENT})(?:[. ]|$)")


def _role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            title = stream.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return "other_ray"
    if title.startswith("ray::ProxyActor"):
        return "proxy"
    replica = _REPLICA_TITLE.match(title)
    if replica is not None:
        return "router" if replica.group(1) == ROUTER_DEPLOYMENT else "version"
    return "other_ray"


# Clients.


class HttpClient:
    """One kept-alive HTTP connection to the router, as one client of a load generator uses."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        self._connection.connect()

    def request(self, method: str, path: str, body: bytes | None = None) -> dict[str, Any]:
        """Send one request and return the decoded JSON response, or raise RuntimeError on any status but 200."""
        headers = {} if body is None else {"Content-Type": "application/json"}
        try:
            self._connection.request(method, path, body=body, headers=headers)
            response = self._connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            # The next request opens a new connection instead of reusing a broken one.
            self._connection.close()
            raise
        if response.status != 200:
            raise RuntimeError(f"{method} {path} returned HTTP {response.status}: {raw[:300]!r}")
        return json.loads(raw)

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class Payloads:
    """Request payloads of one size, and each serving version's predictions for them.

    Attributes
    ----------
    features
        One float64 array of shape ``(rows_per_request, n_features)`` per payload.
    bodies
        The JSON ``POST /predict`` body of each payload.
    expected
        Version label to the class names its model predicts for each payload.
    """

    features: list[np.ndarray]
    bodies: list[bytes]
    expected: dict[str, list[list[str]]]


def build_payloads(probe: np.ndarray, rows: int, models: dict[str, SklearnClassifier]) -> Payloads:
    """Cut ``DISTINCT_PAYLOADS`` payloads of ``rows`` rows from ``probe``, which has shape ``(n, n_features)``."""
    features = []
    for index in range(DISTINCT_PAYLOADS):
        start = (index * rows) % max(1, probe.shape[0] - rows + 1)
        features.append(np.ascontiguousarray(probe[start : start + rows], dtype=np.float64))
    bodies = [json.dumps({"rows": batch.tolist()}).encode("utf-8") for batch in features]
    expected = {label: [predict_names(model, batch) for batch in features] for label, model in models.items()}
    return Payloads(features, bodies, expected)


def predict_names(model: SklearnClassifier, features: np.ndarray) -> list[str]:
    """Return the most likely class name of each row, as ``ModelVersion.predict`` does."""
    probabilities = np.asarray(model.predict_proba(features), dtype=np.float64)
    return [model.classes[index] for index in probabilities.argmax(axis=1)]


# One request along each path. A request function takes the payload index
# and returns the version label that served it, or None on paths with no version.

RequestFn = Callable[[int], str | None]
# A client is a request function and the cleanup that closes its connection.
Client = tuple[RequestFn, Callable[[], None]]
ClientFactory = Callable[[], Client]


class WrongPrediction(RuntimeError):
    """A response whose predictions differ from the serving version's model in the driver."""


def _check(expected: list[str], predictions: list[str], where: str) -> None:
    if predictions != expected:
        raise WrongPrediction(f"{where}: got predictions {predictions[:5]}..., expected {expected[:5]}...")


def http_predict_fn(client: HttpClient, payloads: Payloads) -> RequestFn:
    def call(index: int) -> str | None:
        response = client.request("POST", "/predict", payloads.bodies[index])
        version = response["version"]
        _check(payloads.expected[version][index], response["predictions"], f"POST /predict (version {version})")
        return version

    return call


def version_handle_fn(handle: Any, payloads: Payloads) -> RequestFn:
    def call(index: int) -> str | None:
        scores = handle.predict.remote(payloads.features[index]).result(timeout_s=REQUEST_TIMEOUT_S)
        _check(payloads.expected[CHAMPION][index], scores["predictions"], "version handle")
        return CHAMPION

    return call


def router_ready_fn(handle: Any) -> RequestFn:
    def call(_index: int) -> str | None:
        view = handle.ready.remote().result(timeout_s=REQUEST_TIMEOUT_S)
        if view["champion"]["version"] != CHAMPION:
            raise RuntimeError(f"the router's ready returned champion {view['champion']!r}")
        return None

    return call


def http_versions_fn(client: HttpClient) -> RequestFn:
    def call(_index: int) -> str | None:
        view = client.request("GET", "/versions")
        if view["champion"]["version"] != CHAMPION:
            raise RuntimeError(f"GET /versions returned champion {view['champion']!r}")
        return None

    return call


def model_only_fn(model: SklearnClassifier, payloads: Payloads) -> RequestFn:
    def call(index: int) -> str | None:
        _check(payloads.expected[CHAMPION][index], predict_names(model, payloads.features[index]), "model in driver")
        return CHAMPION

    return call


# Measuring.


@dataclass
class Tally:
    """Latencies and outcomes of the requests of one measurement."""

    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    challenger: int = 0
    first_error: str | None = None

    def record(self, call: RequestFn, index: int) -> None:
        """Send request ``index`` through ``call`` and record its latency or its error."""
        started = time.perf_counter()
        try:
            version = call(index)
        except WrongPrediction:
            raise
        except Exception as error:  # a failed request is counted; the first error is reported
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"{type(error).__name__}: {error}"
            return
        self.latencies_s.append(time.perf_counter() - started)
        if version == CHALLENGER:
            self.challenger += 1

    def merge(self, other: Tally) -> None:
        self.latencies_s.extend(other.latencies_s)
        self.errors += other.errors
        self.challenger += other.challenger
        self.first_error = self.first_error or other.first_error


def measure_sequential(call: RequestFn, requests: int, warm_up: int) -> tuple[Tally, float]:
    """Send ``warm_up`` untimed requests, then ``requests`` timed ones back to back, and return their tally and seconds."""
    for index in range(warm_up):
        call(index % DISTINCT_PAYLOADS)
    tally = Tally()
    started = time.perf_counter()
    for index in range(requests):
        tally.record(call, index % DISTINCT_PAYLOADS)
    return tally, time.perf_counter() - started


def measure_concurrent(factory: ClientFactory, clients: int, seconds: float) -> tuple[Tally, float]:
    """Run ``clients`` threads that send requests back to back for ``seconds``, and return their tally and seconds.

    The seconds run from the start until the last thread has received the
    response to its last request. Clients are made before the clock starts,
    so their connections are open when the threads start.
    """
    thread_clients = [factory() for _ in range(clients)]
    tallies = [Tally() for _ in range(clients)]
    failures: list[WrongPrediction] = []
    barrier = threading.Barrier(clients + 1)
    deadline = math.inf

    def work(number: int) -> None:
        call = thread_clients[number][0]
        barrier.wait()
        index = number
        try:
            while time.perf_counter() < deadline:
                tallies[number].record(call, index % DISTINCT_PAYLOADS)
                index += clients
        except WrongPrediction as error:  # raised again once every thread has stopped
            failures.append(error)

    threads = [threading.Thread(target=work, args=(number,), daemon=True) for number in range(clients)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline = started + seconds
    barrier.wait()
    for thread in threads:
        thread.join(seconds + REQUEST_TIMEOUT_S + 10.0)
    elapsed = time.perf_counter() - started
    for _, cleanup in thread_clients:
        cleanup()
    if failures:
        raise failures[0]
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total, elapsed


@dataclass(frozen=True)
class Case:
    """The settings of one measurement, which its CSV row starts with."""

    dataset: str
    features: int
    split: str
    phase: str
    path: str
    rows_per_request: int
    clients: int


def csv_row(case: Case, tally: Tally, seconds: float, cpu_s: dict[str, float] | None) -> dict[str, object]:
    """Build one CSV row from a measurement and the CPU seconds each role used in it (None if unknown)."""
    served = len(tally.latencies_s)
    latencies_ms = np.asarray(tally.latencies_s) * 1000.0
    has_latency = served > 0
    row: dict[str, object] = {
        "dataset": case.dataset,
        "features": case.features,
        "split": case.split,
        "phase": case.phase,
        "path": case.path,
        "rows_per_request": case.rows_per_request,
        "clients": case.clients,
        "requests": served,
        "errors": tally.errors,
        "seconds": round(seconds, 3),
        "p50_ms": round(float(np.percentile(latencies_ms, 50)), 3) if has_latency else "",
        "p95_ms": round(float(np.percentile(latencies_ms, 95)), 3) if has_latency else "",
        "p99_ms": round(float(np.percentile(latencies_ms, 99)), 3) if has_latency else "",
        "mean_ms": round(float(latencies_ms.mean()), 3) if has_latency else "",
        "requests_per_s": round(served / seconds, 1),
        "rows_per_s": round(served * case.rows_per_request / seconds, 1),
        "challenger_share": round(tally.challenger / served, 4) if served else "",
        "load_1min": round(os.getloadavg()[0], 2),
    }
    for group in CPU_GROUPS:
        row[f"{group}_cpu_ms"] = round(cpu_s[group] * 1000.0 / served, 3) if cpu_s is not None and served else ""
    if tally.first_error is not None:
        print(f"warning: {tally.errors} of {served + tally.errors} requests failed on {case}: {tally.first_error}", file=sys.stderr)
    return row


# The run.


@dataclass(frozen=True)
class Deployment:
    """The served models, the payloads for them, and the serving config they were deployed with."""

    models: dict[str, SklearnClassifier]
    payloads: dict[int, Payloads]
    config: ServingConfig

    @property
    def n_features(self) -> int:
        return next(iter(self.payloads.values())).features[0].shape[1]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fit_model(features: np.ndarray, labels: np.ndarray, classes: Sequence[str]) -> SklearnClassifier:
    """Fit a standardized logistic regression, with the estimator settings that the serving tests use."""
    estimator = build_estimator("logistic_regression", {"max_iter": 300}, standardize=True, seed=0)
    return SklearnClassifier(estimator, classes).fit(features, labels)


def model_path(folder: Path, dataset: str, label: str) -> Path:
    return folder / f"{dataset}-{label}.pkl"


def start_champion(dataset: str, args: argparse.Namespace, folder: Path, port: int) -> Deployment:
    """Fit champion and challenger on separate slices of ``dataset``, save both and deploy the champion."""
    data = load_shipped(dataset)
    train = args.train_rows
    probe_start = 2 * train
    if probe_start + max(args.rows) > len(data.row_ids):
        raise SystemExit(
            f"{dataset} has {len(data.row_ids)} rows, too few for 2 x --train-rows {train} plus "
            f"{max(args.rows)} held-out rows per request; lower --train-rows or --rows"
        )
    models = {
        CHAMPION: fit_model(data.features[:train], data.labels[:train], data.classes),
        CHALLENGER: fit_model(data.features[train : 2 * train], data.labels[train : 2 * train], data.classes),
    }
    for label, model in models.items():
        save_model(model, model_path(folder, dataset, label))
    probe = np.asarray(data.features[probe_start : probe_start + PROBE_ROWS], dtype=np.float64)
    payloads = {rows: build_payloads(probe, rows, models) for rows in args.rows}

    # A 32-row MNIST body is about 0.5 MB of JSON, so the body limit is raised above the default.
    config = ServingConfig(port=port, max_rows=max(1024, *args.rows), max_body_bytes=64_000_000)
    deploy(config, VersionSpec(CHAMPION, model_path=model_path(folder, dataset, CHAMPION)), app_name=APP_NAME, seed=args.seed)
    return Deployment(models, payloads, config)


def http_clients(port: int, build: Callable[[HttpClient], RequestFn]) -> ClientFactory:
    """Return a factory of clients that each own a new HTTP connection."""

    def make() -> Client:
        connection = HttpClient(port)
        return build(connection), connection.close

    return make


def shared_clients(call: RequestFn) -> ClientFactory:
    """Return a factory that hands every thread the same request function, with nothing to close."""
    return lambda: (call, lambda: None)


@dataclass
class Recorder:
    """Runs measurements of one dataset and keeps their CSV rows."""

    dataset: str
    features: int
    args: argparse.Namespace
    sampler: CpuSampler
    rows: list[dict[str, object]] = field(default_factory=list)

    def latency(self, split: str, path: str, size: int, factory: ClientFactory) -> None:
        """Measure ``path`` with one client sending requests back to back."""
        call, cleanup = factory()
        try:
            before = self.sampler.sample()
            tally, seconds = measure_sequential(call, self.args.requests, self.args.warm_up)
            after = self.sampler.sample()
        finally:
            cleanup()
        self._add(Case(self.dataset, self.features, split, "latency", path, size, 1), tally, seconds, before, after)

    def throughput(self, split: str, path: str, size: int, clients: int, factory: ClientFactory) -> None:
        """Measure ``path`` with ``clients`` threads for ``--seconds``."""
        before = self.sampler.sample()
        tally, seconds = measure_concurrent(factory, clients, self.args.seconds)
        after = self.sampler.sample()
        self._add(Case(self.dataset, self.features, split, "throughput", path, size, clients), tally, seconds, before, after)

    def _add(self, case: Case, tally: Tally, seconds: float, before: dict, after: dict) -> None:
        cpu_s = CpuSampler.used(before, after) if self.sampler.available else None
        self.rows.append(csv_row(case, tally, seconds, cpu_s))
        print(format_row(self.rows[-1]), flush=True)


def run_dataset(dataset: str, args: argparse.Namespace, folder: Path, port: int, sampler: CpuSampler) -> list[dict[str, object]]:
    """Deploy one dataset's champion, measure every path, attach the challenger and measure ``http_predict`` again."""
    from ray import serve

    deployment = start_champion(dataset, args, folder, port)
    version_handle = serve.get_app_handle(version_app_name(APP_NAME, CHAMPION))
    router_handle = serve.get_app_handle(APP_NAME)
    recorder = Recorder(dataset, deployment.n_features, args, sampler)

    def predict_over_http(size: int) -> ClientFactory:
        payloads = deployment.payloads[size]
        return http_clients(port, lambda connection: http_predict_fn(connection, payloads))

    champion_only = "champion only"
    for size in args.rows:
        payloads = deployment.payloads[size]
        recorder.latency(champion_only, "http_predict", size, predict_over_http(size))
        recorder.latency(champion_only, "version_handle", size, shared_clients(version_handle_fn(version_handle, payloads)))
        recorder.latency(champion_only, "model_only", size, shared_clients(model_only_fn(deployment.models[CHAMPION], payloads)))
    # Neither path below sends rows, so they are measured once, with 0 rows per request.
    recorder.latency(champion_only, "router_ready", 0, shared_clients(router_ready_fn(router_handle)))
    recorder.latency(champion_only, "http_versions", 0, http_clients(port, http_versions_fn))

    for size in args.rows:
        version_calls = shared_clients(version_handle_fn(version_handle, deployment.payloads[size]))
        for clients in args.clients:
            recorder.throughput(champion_only, "http_predict", size, clients, predict_over_http(size))
            recorder.throughput(champion_only, "version_handle", size, clients, version_calls)

    if args.challenger_weight > 0:
        replace_challenger(
            deployment.config,
            VersionSpec(CHALLENGER, model_path=model_path(folder, dataset, CHALLENGER)),
            app_name=APP_NAME,
            weight=args.challenger_weight,
        )
        split = f"{1 - args.challenger_weight:.0%}/{args.challenger_weight:.0%}"
        for size in args.rows:
            recorder.latency(split, "http_predict", size, predict_over_http(size))
            for clients in args.clients:
                recorder.throughput(split, "http_predict", size, clients, predict_over_http(size))
    return recorder.rows


# Output.


def write_csv(rows: Sequence[dict[str, object]], path: Path) -> None:
    """Write ``rows`` to ``path`` atomically, one column per name in :data:`CSV_COLUMNS`."""
    write_csv_atomic(path, CSV_COLUMNS, [[row.get(column, "") for column in CSV_COLUMNS] for row in rows])


TABLE_HEADER = (
    "| dataset | features | split | phase | path | rows/request | clients | requests | errors "
    "| p50 ms | p95 ms | p99 ms | requests/s | rows/s | challenger share "
    "| CPU ms/request: driver | proxy | router | version | other Ray |\n"
    "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _cell(value: object, digits: int) -> str:
    if value == "" or value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def format_row(row: dict[str, object]) -> str:
    """Return one markdown table line for a CSV row, with a dash for each blank cell."""
    cells = [
        str(row["dataset"]),
        _cell(row["features"], 0),
        str(row["split"]),
        str(row["phase"]),
        f"`{row['path']}`",
        _cell(row["rows_per_request"], 0) if row["rows_per_request"] else "–",
        _cell(row["clients"], 0),
        _cell(row["requests"], 0),
        _cell(row["errors"], 0),
        _cell(row["p50_ms"], 2),
        _cell(row["p95_ms"], 2),
        _cell(row["p99_ms"], 2),
        _cell(row["requests_per_s"], 0),
        _cell(row["rows_per_s"], 0),
        _cell(row["challenger_share"], 3),
        *(_cell(row[f"{group}_cpu_ms"], 2) for group in CPU_GROUPS),
    ]
    return "| " + " | ".join(cells) + " |"


ADDED_HEADER = (
    "| dataset | rows/request | `http_predict` p50 ms | `version_handle` p50 ms | added p50 ms "
    "| `http_predict` p95 ms | `version_handle` p95 ms | added p95 ms |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)


def router_added(rows: Sequence[dict[str, object]]) -> list[str]:
    """Return the markdown lines of the router's added latency: ``http_predict`` minus ``version_handle``.

    The added p95 is the difference of the two p95 values, not the p95 of
    per-request differences, which one run cannot pair up.
    """
    latency = {
        (row["dataset"], row["rows_per_request"], row["path"]): row
        for row in rows
        if row["phase"] == "latency" and row["split"] == "champion only"
    }
    lines = []
    for (dataset, size, path), http_row in latency.items():
        version_row = latency.get((dataset, size, "version_handle"))
        if path != "http_predict" or version_row is None or "" in (http_row["p50_ms"], version_row["p50_ms"]):
            continue
        cells = [str(dataset), str(size)]
        for statistic in ("p50_ms", "p95_ms"):
            through_router = float(http_row[statistic])
            direct = float(version_row[statistic])
            cells += [f"{through_router:.2f}", f"{direct:.2f}", f"{through_router - direct:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def machine_line() -> str:
    """Return cores, architecture, RAM and the versions that the timings depend on."""
    import ray
    import sklearn

    memory_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return (
        f"machine: {os.cpu_count()} cores {platform.machine()}, {memory_gib:.0f} GiB RAM, "
        f"Python {platform.python_version()}, ray {ray.__version__}, scikit-learn {sklearn.__version__}"
    )


# Command line.












def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number of seconds > 0")
    return value


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a number in [0, 1), 0 to skip the split")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_latency", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        type=choice_list(DATASETS, "dataset"),
        default=list(DATASETS),
        help=f"comma-separated shipped datasets, from {', '.join(DATASETS)}",
    )
    parser.add_argument("--rows", type=int_list, default=[1, 32], help="comma-separated rows per request")
    parser.add_argument("--requests", type=positive_int, default=500, help="timed requests per latency measurement")
    parser.add_argument("--warm-up", type=non_negative_int, default=50, help="untimed requests before each latency measurement")
    parser.add_argument("--clients", type=int_list, default=[1, 4, 16], help="comma-separated client thread counts for throughput")
    parser.add_argument("--seconds", type=_positive_seconds, default=10.0, help="duration of each throughput measurement, in seconds")
    parser.add_argument(
        "--challenger-weight",
        type=_weight,
        default=0.1,
        help="challenger's share of traffic in the split measurements, or 0 to skip them",
    )
    parser.add_argument("--train-rows", type=positive_int, default=2000, help="training rows of each model")
    parser.add_argument("--port", type=non_negative_int, default=0, help="HTTP port of Serve's proxy, or 0 to pick a free one")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the router's traffic split")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_latency.csv", help="CSV file to write")
    return parser


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Run every measurement, print markdown tables as rows finish, write the CSV and return its rows.

    Starts a local Ray with 2 logical CPUs unless Ray is already initialised
    in this process. A session that it did not start is left running.
    """
    args = build_parser().parse_args(argv)
    import ray

    from al_ray.runtime import RAY_ENV_VARS

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
            runtime_env={"env_vars": dict(RAY_ENV_VARS)},
        )
    # Serve logs every serve.start and application deletion at INFO, between the table's rows.
    # serve.start configures its logger again, which reset a level but kept a filter (ray 2.60).
    serve_logger = logging.getLogger("ray.serve")
    serve_logger.addFilter(_warnings_only)
    sampler = CpuSampler()
    rows: list[dict[str, object]] = []
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}", flush=True)
    print(TABLE_HEADER, flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="serve_latency_") as folder:
            # One port for every dataset: a second serve.start keeps the HTTP options of the first.
            port = args.port or free_port()
            for dataset in args.datasets:
                rows.extend(run_dataset(dataset, args, Path(folder), port, sampler))
                shutdown(APP_NAME, stop_serve=False)
    finally:
        shutdown(APP_NAME)
        if started_ray:
            ray.shutdown()
        serve_logger.removeFilter(_warnings_only)
    write_csv(rows, args.out)
    print()
    print(ADDED_HEADER)
    for line in router_added(rows):
        print(line)
    print(machine_line())
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")
    print(f"wrote {args.out}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
