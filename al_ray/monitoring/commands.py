"""Command-line commands of al_ray.monitoring: ``al-ray audit verify|show`` and ``al-ray watch``.

``verify`` exits 0 when the chain is intact and 1 when it is broken, and it
names the first bad entry. A missing log or a bad option exits 2, like every
other user error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from al_ray.errors import AuditError, ConfigError

__all__ = ["add_parsers"]

# Exit status of `audit verify` when the chain is broken.
CHAIN_BROKEN = 1

_MAX_PROBLEMS_PRINTED = 20
_DATA_WIDTH = 100
_ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


def add_parsers(commands) -> None:
    """Add this package's commands to the `al-ray` parser; each sets `handler` with set_defaults."""
    from al_ray.monitoring.watch_cli import add_watch_parser

    add_watch_parser(commands)
    audit = commands.add_parser("audit", help="check and read the audit log of labels, models, rollouts and triggers")
    actions = audit.add_subparsers(dest="audit_action", required=True, metavar="ACTION")

    verify = actions.add_parser(
        "verify", help="check the hash chain; exit 0 if intact, 1 if broken (naming the first bad entry)"
    )
    _add_location(verify)
    verify.add_argument(
        "--anchor",
        metavar="SEQ:HASH",
        help="an entry's seq and entry_hash recorded earlier (verify prints the head); "
        "fails if the log no longer contains it, which catches entries removed from the end",
    )
    verify.set_defaults(handler=_command_verify)

    show = actions.add_parser("show", help="print audit entries, oldest first, filtered by kind, time and id")
    _add_location(show)
    show.add_argument(
        "--kind", action="append", metavar="KIND",
        help="only entries of this kind: label, model_version, deployment, traffic or trigger; "
        "repeat, or separate with commas, for several",
    )
    show.add_argument("--since", metavar="ISO", help="only entries at or after this UTC time, e.g. 2026-12-04T10:00")
    show.add_argument("--until", metavar="ISO", help="only entries before this UTC time")
    show.add_argument(
        "--id", dest="subject", metavar="SUBJECT",
        help="only entries about this subject: a row_id for labels, NAME/VERSION for models and rollouts",
    )
    show.add_argument("--actor", help="only entries by this annotator, user or policy")
    show.add_argument("--limit", type=int, metavar="N", help="only the newest N matching entries")
    show.add_argument("--json", action="store_true", help="print one JSON object per entry, every field included")
    show.set_defaults(handler=_command_show)


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, nargs="?", help="the run's YAML config; its monitoring.audit.path applies")
    parser.add_argument(
        "--output", type=Path, metavar="RUN_DIR",
        help="with CONFIG: the run's output folder, whose audit.db is the default log",
    )
    parser.add_argument(
        "--path", metavar="LOCATION", help="the audit log itself: a .db or .jsonl file, or a SQLAlchemy URL"
    )


def _open_existing(args: argparse.Namespace):
    from al_ray.monitoring.audit import AuditLog

    if (args.config is None) == (args.path is None):
        raise ConfigError("give either a config (the run's YAML file) or --path LOCATION of the audit log, not both")
    if args.path is not None:
        location = args.path
    else:
        from al_ray.config import load_config
        from al_ray.monitoring.audit_records import audit_location

        config = load_config(args.config)
        location = audit_location(config, args.output or _default_output_dir(config))
    file_path = _file_of(location)
    if file_path is not None and not file_path.is_file():
        raise AuditError(
            f"no audit log at {file_path}; a run writes one when monitoring.audit.enabled is true "
            "(pass --output RUN_DIR if the run used another output folder)"
        )
    return AuditLog(location)


def _default_output_dir(config) -> Path:
    # The rule of al_ray.loop.runner.default_output_dir, without importing the
    # loop, which costs seconds (Ray, torch) for a command that reads one file.
    return Path(config.output) if config.output is not None else Path("runs") / config.name / config.strategy.name


def _file_of(location: str) -> Path | None:
    """Return the file a location names, or None for a database server URL."""
    if "://" not in location:
        return Path(location).expanduser()
    if location.startswith("sqlite:///"):
        return Path(location.removeprefix("sqlite:///").split("?", 1)[0])
    return None


def _command_verify(args: argparse.Namespace) -> int:
    anchor = None
    if args.anchor is not None:
        match = _ANCHOR.match(args.anchor.strip())
        if match is None:
            raise ConfigError(
                f"--anchor must be SEQ:HASH with the 64 hex digits of an entry_hash, got {args.anchor!r}; "
                "copy it from an earlier `al-ray audit verify` line 'head: ...'"
            )
        anchor = (int(match.group(1)), match.group(2))
    with _open_existing(args) as log:
        problems = log.verify(anchor=anchor)
        head = log.head()
        where = log.location
    if not problems:
        if head is None:
            print(f"audit log {where}: empty, nothing to verify")
        else:
            print(f"audit log {where}: {head.seq} entries, chain intact")
            print(f"head: {head.seq}:{head.entry_hash}")
        return 0
    first = problems[0]
    print(f"audit log {where}: chain broken; first bad entry: {first}", file=sys.stderr)
    for problem in problems[1:_MAX_PROBLEMS_PRINTED]:
        print(f"  also: {problem}", file=sys.stderr)
    if len(problems) > _MAX_PROBLEMS_PRINTED:
        print(f"  and {len(problems) - _MAX_PROBLEMS_PRINTED} more problems", file=sys.stderr)
    return CHAIN_BROKEN


def _command_show(args: argparse.Namespace) -> int:
    from al_ray.monitoring.audit import KINDS, parse_time

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be 1 or more, got {args.limit}")
    since = parse_time(args.since) if args.since is not None else None
    until = parse_time(args.until) if args.until is not None else None
    kinds = [kind.strip() for value in args.kind or () for kind in value.split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ConfigError(
            f"unknown --kind {', '.join(repr(kind) for kind in unknown)}; valid kinds: {', '.join(KINDS)}"
        )
    with _open_existing(args) as log:
        entries = log.entries(kind=kinds or None, since=since, until=until, subject=args.subject,
                              actor=args.actor, limit=args.limit)
    if args.json:
        for entry in entries:
            print(json.dumps(entry.to_dict(), sort_keys=True))
        return 0
    if not entries:
        print("no audit entries match", file=sys.stderr)
        return 0
    print(f"{'seq':>6}  {'time (UTC)':<26}  {'kind':<13}  {'actor':<18}  {'subject':<20}  data")
    for entry in entries:
        data = json.dumps(entry.data, sort_keys=True, separators=(",", ":"))
        if len(data) > _DATA_WIDTH:
            data = data[: _DATA_WIDTH - 3] + "..."
        print(
            f"{entry.seq:>6}  {entry.time[:26]:<26}  {entry.kind:<13}  {entry.actor:<18}  {entry.subject:<20}  {data}"
        )
    return 0
