"""The ``al-ray label`` commands: serve the labeling page, manage annotators, exchange Label Studio files.

Every command opens the label store of the run that a config describes, the
same store the loop writes: ``labels.store`` when set, else
``RUN_DIR/labels.db`` with ``RUN_DIR`` from ``--output`` or the run's default
output folder. The run creates the store, so a store file that does not
exist yet is an error here rather than a new empty store.

With ``monitoring.audit.enabled``, ``serve`` and ``import`` append a
``label`` entry per stored answer to the run's audit log. With
``monitoring.metrics.enabled``, ``serve`` also answers ``GET /metrics`` for
Prometheus on the labeling port.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from al_ray.errors import ConfigError, LabelStoreError
from al_ray.labeling._checks import (
    ANNOTATOR_ID_RULE,
    RESERVED_ANNOTATOR_IDS,
    RESERVED_ANNOTATOR_PREFIXES,
)

if TYPE_CHECKING:
    from al_ray.config import RunConfig
    from al_ray.labeling.queue import LabelQueue
    from al_ray.labeling.service.rows import RowSource
    from al_ray.labels import LabelStore
    from al_ray.monitoring.audit import AuditLog

__all__ = ["add_parsers"]

logger = logging.getLogger(__name__)


def add_parsers(commands) -> None:
    """Add this package's commands to the `al-ray` parser; each sets `handler` with set_defaults."""
    label = commands.add_parser(
        "label", help="label rows with people: the labeling page, annotators, Label Studio files"
    )
    actions = label.add_subparsers(dest="label_action", required=True, metavar="ACTION")

    serve = actions.add_parser("serve", help="serve the labeling page and API for a run with labels.source: human")
    serve.add_argument("config", type=Path, help="the run's YAML config")
    serve.add_argument("--host", help="address to bind; default: labeling.host (127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to listen on, 0 for any free one; default: labeling.port (8300)")
    _add_output_option(serve)
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that other machines can reach; tokens and answers then cross the network unencrypted",
    )
    serve.set_defaults(handler=_command_serve)

    annotators = actions.add_parser(
        "annotators", help="add annotators (each gets a token), list them, deactivate them, reset their tokens"
    )
    annotator_actions = annotators.add_subparsers(dest="annotators_action", required=True, metavar="ACTION")
    add = annotator_actions.add_parser("add", help="add an annotator and print their token once")
    add.add_argument(
        "name",
        help=f"annotator id, e.g. alice: {ANNOTATOR_ID_RULE}; ids starting with "
        f"{' or '.join(RESERVED_ANNOTATOR_PREFIXES)}, and {' or '.join(RESERVED_ANNOTATOR_IDS)}, are reserved",
    )
    add.add_argument("--admin", action="store_true", help="the annotator may also open the quality view")
    add.add_argument("config", type=Path, help="the run's YAML config")
    _add_output_option(add)
    add.set_defaults(handler=_command_annotators_add)
    listing = annotator_actions.add_parser("list", help="list the annotators, their roles and whether they are active")
    listing.add_argument("config", type=Path, help="the run's YAML config")
    _add_output_option(listing)
    listing.set_defaults(handler=_command_annotators_list)
    for action, handler, summary in (
        ("deactivate", _command_annotators_deactivate, "reject the annotator's token until they are activated again; their answers stay"),
        ("activate", _command_annotators_activate, "accept a deactivated annotator's token again"),
        ("reset-token", _command_annotators_reset_token, "print a new token for the annotator once; the old one stops working"),
    ):
        command = annotator_actions.add_parser(action, help=summary)
        command.add_argument("name", help="annotator id, as `al-ray label annotators list` shows it")
        command.add_argument("config", type=Path, help="the run's YAML config")
        _add_output_option(command)
        command.set_defaults(handler=handler)

    export = actions.add_parser("export", help="write the pending tasks as a Label Studio import file")
    export.add_argument("config", type=Path, help="the run's YAML config")
    export.add_argument("file", type=Path, help="JSON file to write; the labeling config XML is written beside it")
    _add_output_option(export)
    export.set_defaults(handler=_command_export)

    imported = actions.add_parser("import", help="store the answers of a Label Studio JSON export")
    imported.add_argument("config", type=Path, help="the run's YAML config")
    imported.add_argument("file", type=Path, help="Label Studio export in JSON format")
    _add_output_option(imported)
    imported.set_defaults(handler=_command_import)


def _add_output_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--output", type=Path, metavar="RUN_DIR", help="the run's output folder, as given to `al-ray run --output`; default: output in the config, else runs/NAME/STRATEGY"
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


# Opening a run's store and queue.


@dataclass
class _Run:
    config: RunConfig
    store: LabelStore
    queue: LabelQueue
    rows: RowSource
    audit: AuditLog | None = None


def store_location(config: RunConfig, output: Path | None) -> str | Path:
    """Return the run's label store as the loop opens it: ``labels.store``, or ``RUN_DIR/labels.db``."""
    from al_ray.loop.runner import default_output_dir

    if config.labels.store is not None:
        return config.labels.store
    return (output if output is not None else default_output_dir(config)) / "labels.db"


@contextlib.contextmanager
def open_run(
    config_path: Path, output: Path | None, config: RunConfig | None = None, *, audit: bool = False
) -> Iterator[_Run]:
    """Open the label store, queue and rows of the run that ``config_path`` describes, and close them after.

    ``config`` is the config already loaded from ``config_path``, if any. With
    ``audit`` and ``monitoring.audit.enabled``, the queue appends an entry per
    stored answer to the run's audit log, the one the loop writes.
    """
    from al_ray.config import load_config
    from al_ray.labeling.queue import LabelQueue
    from al_ray.labeling.service.rows import RowSource
    from al_ray.labels import LabelStore
    from al_ray.loop.runner import default_output_dir
    from al_ray.monitoring.audit_records import open_audit_log

    config = config if config is not None else load_config(config_path)
    location = store_location(config, output)
    is_url = "://" in str(location)
    if not is_url and not Path(location).exists():
        raise LabelStoreError(
            f"no label store at {Path(location).resolve()}; start the run first with `al-ray run {config_path}` "
            "(with labels.source: human), or pass the run's folder as --output RUN_DIR"
        )
    rows = RowSource.from_config(config)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(LabelStore(location))
        log = None
        if audit:
            log = open_audit_log(config, output if output is not None else default_output_dir(config))
        if log is not None:
            stack.enter_context(log)
        # for_run derives the queue's seed from the run's as the loop does, so gold draws agree.
        queue = LabelQueue.for_run(store, rows.classes, config, audit=log)
        yield _Run(config, store, queue, rows, log)


# Commands.


def _command_serve(args: argparse.Namespace) -> int:
    from al_ray.config import load_config
    from al_ray.labeling.service import create_app
    from al_ray.labeling.service.server import is_loopback, serve_forever
    from al_ray.monitoring.metrics import process_metrics

    config = load_config(args.config)
    host = args.host or config.labeling.host
    port = args.port if args.port is not None else config.labeling.port
    if not is_loopback(host) and not args.allow_remote:
        raise ConfigError(
            f"host {host!r} can be reached from other machines, and the labeling service speaks plain HTTP, so "
            "tokens and answers would cross the network unencrypted; serve on 127.0.0.1 behind a TLS proxy, "
            "or pass --allow-remote on a trusted network"
        )
    if config.labels.source != "human":
        raise ConfigError(
            f"labels.source is {config.labels.source!r} in {args.config}, so the run labels rows itself and "
            "posts no task for people; set labels.source: human and start the run again"
        )
    listener = _bind(host, port)
    # The service serves /metrics on its own port; monitoring.metrics.host and port are the loop's exporter.
    metrics = process_metrics(config.monitoring.metrics.namespace) if config.monitoring.metrics.enabled else None
    with open_run(args.config, args.output, config, audit=True) as run:
        app = create_app(run.queue, run.rows, config.labeling, metrics=metrics)
        bound_port = listener.getsockname()[1]
        shown_host = f"[{host}]" if ":" in host else host
        print(f"labeling page: http://{shown_host}:{bound_port}/", flush=True)
        print(f"label store: {_shown_location(run.store.location)}", flush=True)
        if run.audit is not None:
            print(f"audit log: {run.audit.location}", flush=True)
        if metrics is not None:
            print(f"Prometheus metrics: http://{shown_host}:{bound_port}/metrics", flush=True)
        output = f" --output {args.output}" if args.output is not None else ""
        print(
            f"add annotators with `al-ray label annotators add NAME {args.config}{output}`; press Ctrl+C to stop",
            flush=True,
        )
        serve_forever(app, host, bound_port, sockets=[listener])
    return 0


def _shown_location(location: str) -> str:
    """Return a SQLite store's file as an absolute path, and a URL (its password hidden) as it is."""
    if "://" in location or location.startswith((":", "file:")):
        return location
    return str(Path(location).resolve())


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so a port in use fails with a clear message before the store opens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host.strip("[]"), port))
    except OSError as error:
        listener.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {error.strerror}; pass another --port, or stop the process using it"
        ) from None
    listener.listen(128)
    listener.set_inheritable(True)
    return listener


def _command_annotators_add(args: argparse.Namespace) -> int:
    role = "admin" if args.admin else "annotator"
    with open_run(args.config, args.output) as run:
        token = run.queue.add_annotator(args.name, role)
    print(f"added {role} {args.name}")
    print(f"token: {token}")
    print(
        "The token is shown only now and stored hashed. Give it to the annotator, who enters it on the "
        "labeling page."
    )
    return 0


def _command_annotators_deactivate(args: argparse.Namespace) -> int:
    with open_run(args.config, args.output) as run:
        run.queue.set_active(args.name, False)
    print(
        f"deactivated {args.name}: their token is rejected from now on, their answers stay in the store, "
        "and the task they had open returns to the queue"
    )
    print(f"undo with `al-ray label annotators activate {args.name} {args.config}`")
    return 0


def _command_annotators_activate(args: argparse.Namespace) -> int:
    with open_run(args.config, args.output) as run:
        run.queue.set_active(args.name, True)
    print(f"activated {args.name}: their token is accepted again")
    return 0


def _command_annotators_reset_token(args: argparse.Namespace) -> int:
    with open_run(args.config, args.output) as run:
        token = run.queue.reset_token(args.name)
    print(f"new token for {args.name}: {token}")
    print(
        "The old token stops working now. The new one is shown only now and stored hashed; give it to the "
        "annotator, who enters it on the labeling page."
    )
    return 0


def _command_annotators_list(args: argparse.Namespace) -> int:
    with open_run(args.config, args.output) as run:
        annotators = run.queue.annotators()
    if not annotators:
        print("no annotators yet; add one with `al-ray label annotators add NAME CONFIG`")
        return 0
    columns = ("annotator_id", "role", "active", "created_at")
    rows = [[_cell(entry, column) for column in columns] for entry in annotators]
    widths = [max(len(column), *(len(row[index]) for row in rows)) for index, column in enumerate(columns)]
    print("  ".join(column.ljust(width) for column, width in zip(columns, widths)).rstrip())
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
    return 0


def _cell(entry: object, column: str) -> str:
    value = entry.get(column) if isinstance(entry, dict) else getattr(entry, column, None)
    if value is None:
        return "-"
    if column == "created_at" and isinstance(value, (int, float)):
        import datetime

        return datetime.datetime.fromtimestamp(value, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def _command_export(args: argparse.Namespace) -> int:
    from al_ray.labeling.labelstudio import export_tasks, labeling_config_path

    with open_run(args.config, args.output) as run:
        items = run.queue.pending_items()
        rows = run.rows
        # Label Studio draws greyscale images only, so a colour image row is exported as a table.
        image_shape = rows.image_shape if rows.image_shape is not None and len(rows.image_shape) == 2 else None
        display = "table" if rows.display == "image" and image_shape is None else rows.display
        count = export_tasks(
            items,
            args.file,
            classes=rows.classes,
            display=display,
            features_of=rows.values_of,
            image_shape=image_shape,
            feature_names=rows.feature_names,
        )
    print(f"wrote {count} pending tasks to {args.file}")
    print(f"labeling config for the Label Studio project: {labeling_config_path(args.file)}")
    return 0


def _command_import(args: argparse.Namespace) -> int:
    from al_ray.labeling.labelstudio import read_annotations

    with open_run(args.config, args.output, audit=True) as run:
        imported = read_annotations(args.file, classes=run.rows.classes)
        stored = run.queue.import_votes(imported.votes)
    print(f"read {len(imported.votes)} answers on {imported.tasks} tasks from {args.file}; stored {stored} new ones")
    skipped = {
        "cancelled": imported.cancelled,
        "without a choice": imported.empty,
        "superseded by a later annotation": len(imported.superseded),
    }
    for reason, count in skipped.items():
        if count:
            print(f"left out {count} annotations {reason}")
    return 0
