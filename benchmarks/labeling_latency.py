"""Measure the labeling service's latency with concurrent annotators: fetching the next task, submitting an answer.

For each database the script prepares a run of the shipped ``mnist_test``
dataset with ``labels.source: human``: it creates the label store, posts
``annotators x answers`` tasks (one answer per task), enqueues them in a
:class:`~al_ray.labeling.queue.LabelQueue` and adds the annotators. It then
starts ``al-ray label serve`` in its own process on 127.0.0.1, the command a
person runs, so the server's CPU work does not share this process's GIL with
the clients.

Each annotator is one thread with its own kept-alive HTTP connection
(``httpx.Client``). After ``--warm-up`` untimed ``GET /api/progress``
requests, it loops ``GET /api/next`` then ``POST /api/answers`` until it has
submitted ``--answers`` answers or the queue has no task left for it. A
timed request starts before the request is sent and ends once its JSON body
is decoded. Every response must have the expected status (200 for next, 201
for a stored answer), and at the end the store must contain one annotation per
submitted answer.

Databases: SQLite (a file in a temporary folder) always, and PostgreSQL when
``AL_RAY_TEST_POSTGRES_URL`` is set; the run then gets its own schema on that
server, dropped afterwards.

Run:  python -m benchmarks.labeling_latency [--annotators 10] [--answers 100] [--smoke]
Writes benchmarks/results/labeling_latency.csv and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import yaml

from al_ray.loop.outputs import write_csv_atomic
from benchmarks._args import choice_list, non_negative_int, positive_int

__all__ = ["CSV_COLUMNS", "DATABASES", "OPERATIONS", "build_parser", "main"]

RESULTS = Path(__file__).resolve().parent / "results"
POSTGRES_URL_VARIABLE = "AL_RAY_TEST_POSTGRES_URL"
DATABASES = ("sqlite", "postgresql")
OPERATIONS = ("next", "submit")
CSV_COLUMNS = (
    "database",
    "operation",
    "annotators",
    "requests",
    "errors",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "max_ms",
    "answers_per_s",
    "seconds",
    "cpus",
    "load_1min",
)
SMOKE_ANNOTATORS = 10
SMOKE_ANSWERS = 5
SERVER_START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0
_URL_LINE = re.compile(r"labeling page: (http://\S+?)/?$")


# One database's run folder, store and server.


@dataclass
class PreparedRun:
    """A run ready to serve: its config file, store URL, tokens and row count."""

    config_path: Path
    store_url: str
    tokens: list[str]
    n_tasks: int


def prepare_run(folder: Path, store_url: str, annotators: int, answers: int, seed: int) -> PreparedRun:
    """Write a human-labeling config for ``mnist_test``, post and enqueue the tasks, and add the annotators."""
    from al_ray.config import load_config
    from al_ray.data import load_shipped
    from al_ray.labeling.queue import LabelQueue
    from al_ray.labels import LabelStore

    config_path = folder / "labeling_latency.yaml"
    raw = {
        "name": "labeling_latency",
        "seed": seed,
        "output": str(folder / "run"),
        "data": {"dataset": "mnist_test", "initial_labeled": 20, "test_size": 2000},
        "labels": {"source": "human", "store": store_url},
        "tracking": {"enabled": False},
    }
    config_path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = load_config(config_path)
    data = load_shipped("mnist_test")

    n_tasks = annotators * answers
    rng = np.random.default_rng(seed)
    row_ids = rng.choice(data.row_ids, size=n_tasks, replace=False).tolist()
    with LabelStore(store_url) as store:
        store.begin_round(1)
        store.post_tasks(1, row_ids)
        store.mark_round_queried(1)
        queue = LabelQueue(store, data.classes, config.labeling, seed=seed)
        queue.enqueue(store.tasks(round_index=1))
        tokens = [queue.add_annotator(f"annotator{index:02d}") for index in range(annotators)]
    return PreparedRun(config_path, store_url, tokens, n_tasks)


@contextlib.contextmanager
def served(config_path: Path, log_path: Path) -> Iterator[str]:
    """Run ``al-ray label serve`` on a free port of 127.0.0.1 and yield its base URL; stop it after.

    The server's log goes to the file ``log_path``, so the server never blocks on a full stderr pipe.
    """
    command = [sys.executable, "-m", "al_ray.cli", "label", "serve", str(config_path), "--port", "0"]
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        url = _read_url(process, log_path)
        _wait_healthy(url)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_url(process: subprocess.Popen, log_path: Path) -> str:
    assert process.stdout is not None  # set by stdout=PIPE
    # The server prints its URL as its first line once the port is bound; a
    # server that fails exits, which ends this loop.
    for line in process.stdout:
        match = _URL_LINE.search(line.strip())
        if match:
            return match.group(1)
    process.wait()
    log = log_path.read_text(encoding="utf-8", errors="replace")
    raise RuntimeError(f"`al-ray label serve` exited with status {process.returncode} before printing its URL: {log[-2000:]}")


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the labeling service at {url} did not respond on /healthz within {SERVER_START_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


@contextlib.contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """Create an empty schema on the PostgreSQL server, yield a URL that uses it, and drop it after."""
    import sqlalchemy as sa

    engine = sa.create_engine(server_url)
    schema = f"al_ray_bench_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        # libpq's options parameter sets search_path on every connection.
        scoped = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


# The annotators.


@dataclass
class Tally:
    """Latencies and failures of one operation, merged over the annotator threads."""

    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, elapsed: list[float], errors: int, first_error: str | None) -> None:
        with self.lock:
            self.seconds.extend(elapsed)
            self.errors += errors
            if self.first_error is None:
                self.first_error = first_error


def annotate(url: str, token: str, answers: int, warm_up: int, classes: Sequence[str], tallies: dict[str, Tally], seed: int) -> int:
    """Loop next -> submit as one annotator until ``answers`` are stored or no task is left; return the count stored."""
    rng = np.random.default_rng(seed)
    elapsed: dict[str, list[float]] = {operation: [] for operation in OPERATIONS}
    errors = dict.fromkeys(OPERATIONS, 0)
    first_error: dict[str, str | None] = dict.fromkeys(OPERATIONS)
    stored = 0
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
        for _ in range(warm_up):
            client.get("/api/progress").raise_for_status()
        while stored < answers:
            started = time.perf_counter()
            response = client.get("/api/next")
            body = response.json()
            elapsed["next"].append(time.perf_counter() - started)
            if response.status_code != 200:
                errors["next"] += 1
                first_error["next"] = first_error["next"] or f"HTTP {response.status_code}: {body}"
                continue
            task = body["task"]
            if task is None:
                break
            answer = {
                "item_id": task["item_id"],
                "label": str(classes[int(rng.integers(len(classes)))]),
                "submission_id": uuid.uuid4().hex,
            }
            started = time.perf_counter()
            response = client.post("/api/answers", json=answer)
            body = response.json()
            elapsed["submit"].append(time.perf_counter() - started)
            if response.status_code != 201:
                errors["submit"] += 1
                first_error["submit"] = first_error["submit"] or f"HTTP {response.status_code}: {body}"
                continue
            stored += 1
    for operation in OPERATIONS:
        tallies[operation].add(elapsed[operation], errors[operation], first_error[operation])
    return stored


def measure(url: str, tokens: Sequence[str], answers: int, warm_up: int, classes: Sequence[str], seed: int) -> tuple[dict[str, Tally], int, float]:
    """Run one thread per token at once; return the tallies, the answers stored and the wall seconds."""
    tallies = {operation: Tally() for operation in OPERATIONS}
    stored = [0] * len(tokens)
    barrier = threading.Barrier(len(tokens) + 1)

    def run(index: int) -> None:
        barrier.wait()
        stored[index] = annotate(url, tokens[index], answers, warm_up, classes, tallies, seed + index)

    threads = [threading.Thread(target=run, args=(index,), name=f"annotator-{index}") for index in range(len(tokens))]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return tallies, sum(stored), time.perf_counter() - started


def count_annotations(store_url: str) -> int:
    """Return the number of annotations in the store."""
    import sqlalchemy as sa

    from al_ray.labeling.schema import annotations_table

    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(annotations_table)).scalar_one())
    finally:
        engine.dispose()


# Reporting.


def summarize(database: str, operation: str, annotators: int, tally: Tally, stored: int, seconds: float) -> dict[str, object]:
    """Return one CSV row of percentiles for one operation."""
    latencies_ms = np.asarray(tally.seconds, dtype=np.float64) * 1000.0
    percentile = (lambda q: f"{np.percentile(latencies_ms, q):.2f}") if latencies_ms.size else (lambda q: "")
    return {
        "database": database,
        "operation": operation,
        "annotators": annotators,
        "requests": int(latencies_ms.size),
        "errors": tally.errors,
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "p99_ms": percentile(99),
        "mean_ms": f"{latencies_ms.mean():.2f}" if latencies_ms.size else "",
        "max_ms": f"{latencies_ms.max():.2f}" if latencies_ms.size else "",
        "answers_per_s": f"{stored / seconds:.1f}" if seconds > 0 else "",
        "seconds": f"{seconds:.2f}",
        "cpus": os.cpu_count() or 0,
        "load_1min": f"{os.getloadavg()[0]:.2f}",
    }


TABLE_COLUMNS = ("database", "operation", "annotators", "requests", "errors", "p50_ms", "p95_ms", "p99_ms", "max_ms", "answers_per_s")


def markdown_table(rows: Sequence[dict[str, object]]) -> str:
    """Return the rows as a markdown table of the main columns."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    lines += ["| " + " | ".join(str(row[column]) or "-" for column in TABLE_COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.labeling_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=positive_int, default=10, help="concurrent annotators, one thread each")
    parser.add_argument("--answers", type=positive_int, default=100, help="answers each annotator submits")
    parser.add_argument("--warm-up", type=non_negative_int, default=3, help="untimed requests per annotator first")
    parser.add_argument(
        "--databases",
        type=choice_list(DATABASES, "database"),
        default=list(DATABASES),
        help=f"comma-separated databases from {', '.join(DATABASES)}; postgresql needs {POSTGRES_URL_VARIABLE}",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the task rows and the answers")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"a seconds-long check: {SMOKE_ANNOTATORS} annotators, {SMOKE_ANSWERS} answers each",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "labeling_latency.csv", help="CSV file to write")
    return parser


def main(argv: Sequence[str] | None = None) -> list[dict[str, object]]:
    """Measure every database, print the markdown table, write the CSV and return its rows."""
    args = build_parser().parse_args(argv)
    annotators, answers = (SMOKE_ANNOTATORS, SMOKE_ANSWERS) if args.smoke else (args.annotators, args.answers)
    databases = list(args.databases)
    postgres_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if "postgresql" in databases and not postgres_url:
        print(f"skipping postgresql: {POSTGRES_URL_VARIABLE} is not set", file=sys.stderr)
        databases.remove("postgresql")

    from al_ray.data import load_shipped

    classes = load_shipped("mnist_test").classes
    rows: list[dict[str, object]] = []
    print(f"{annotators} annotators x {answers} answers, {os.cpu_count()} CPUs, Python {platform.python_version()}", flush=True)
    for database in databases:
        with contextlib.ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="labeling_latency_")))
            if database == "sqlite":
                store_url = f"sqlite:///{folder / 'labels.db'}"
            else:
                store_url = stack.enter_context(postgres_schema(postgres_url or ""))
            run = prepare_run(folder, store_url, annotators, answers, args.seed)
            url = stack.enter_context(served(run.config_path, folder / "server.log"))
            tallies, stored, seconds = measure(url, run.tokens, answers, args.warm_up, classes, args.seed)
            in_store = count_annotations(store_url)
            if in_store != stored:
                raise RuntimeError(f"{database}: {stored} answers were acknowledged, but the store contains {in_store}")
            for operation in OPERATIONS:
                tally = tallies[operation]
                if tally.errors:
                    print(f"warning: {tally.errors} {operation} requests failed on {database}: {tally.first_error}", file=sys.stderr)
                rows.append(summarize(database, operation, annotators, tally, stored, seconds))
    print(markdown_table(rows), flush=True)
    write_csv_atomic(args.out, CSV_COLUMNS, [[row[column] for column in CSV_COLUMNS] for row in rows])
    print(f"wrote {args.out}", flush=True)
    return rows


if __name__ == "__main__":
    main()
