"""Command-line commands of al_ray.cluster: ``submit``, ``jobs status|logs|stop`` and ``check``.

Exit statuses: 0 on success. With ``--follow``, 1 when the job failed and 3
when it was stopped. As for every ``al-ray`` command, 2 for a user error: an
invalid config or address, an unreachable cluster, a missing token.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from al_ray.cli import _whole_number

__all__ = ["add_parsers"]

_ADDRESS_HELP = (
    "Ray dashboard address, e.g. http://HOST:8265; default: cluster.address of the config, "
    "else the RAY_ADDRESS environment variable"
)
# How long `jobs stop` waits for the job to reach STOPPED before it returns.
_STOP_WAIT_S = 15.0


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def add_parsers(commands) -> None:
    """Add this package's commands to the `al-ray` parser; each sets `handler` with set_defaults."""
    submit = commands.add_parser("submit", help="run a config on a Ray cluster as a Ray job")
    submit.add_argument("config", type=Path, help="YAML config, e.g. configs/mnist.yaml")
    submit.add_argument("--address", help=_ADDRESS_HELP)
    submit.add_argument(
        "--follow", action="store_true", help="stream the job's log and exit 0 (succeeded), 1 (failed) or 3 (stopped)"
    )
    submit.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS", help="with --follow, stop following after this long")
    submit.add_argument("--rounds", type=_whole_number(1), help="query rounds; overrides loop.rounds")
    submit.add_argument("--seed", type=_whole_number(0), help="root seed; overrides seed")
    submit.add_argument("--strategy", help="query strategy; overrides strategy.name")
    submit.add_argument("--scoring", choices=("auto", "local", "ray"), help="scoring path; overrides scoring.mode")
    resume = submit.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue the run in the output folder")
    resume.add_argument(
        "--more-rounds",
        type=_whole_number(1),
        metavar="N",
        help="run N rounds past the last completed one, starting the run if there is none yet "
        "(for scheduled rounds: the same command works every time)",
    )
    submit.set_defaults(handler=_command_submit)

    jobs = commands.add_parser("jobs", help="status, logs or stop of a job that `al-ray submit` started")
    actions = jobs.add_subparsers(dest="jobs_action", required=True, metavar="ACTION")
    status = actions.add_parser("status", help="print a job's status and Ray's message about it")
    logs = actions.add_parser("logs", help="print a job's log")
    logs.add_argument("--follow", action="store_true", help="stream the log until the job ends; exit as `submit --follow`")
    logs.add_argument("--timeout", type=_positive_seconds, metavar="SECONDS", help="with --follow, stop following after this long")
    stop = actions.add_parser("stop", help="stop a running job")
    for action in (status, logs, stop):
        action.add_argument("submission_id", metavar="ID", help="the job's submission id, as `al-ray submit` printed it")
        action.add_argument("--address", help=_ADDRESS_HELP)
        action.add_argument("--config", type=Path, help="read cluster.address and cluster.request_timeout_s from this config")
    status.set_defaults(handler=_command_jobs_status)
    logs.set_defaults(handler=_command_jobs_logs)
    stop.set_defaults(handler=_command_jobs_stop)

    check = commands.add_parser(
        "check",
        help="test that the config's model builds and its data, output, label store, MLflow and Ray cluster can be reached",
    )
    check.add_argument("config", type=Path, help="YAML config, e.g. configs/mnist.yaml")
    check.add_argument("--address", help=_ADDRESS_HELP + "; without one, Ray is not checked")
    check.set_defaults(handler=_command_check)


def _write_log(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _report_end(outcome) -> int:
    """Print how a followed job ended; return the exit status for it."""
    message = f"job {outcome.submission_id} {outcome.status}" + (f": {outcome.summary}" if outcome.summary else "")
    if outcome.status == "FAILED":
        print(f"\nal-ray: {message}", file=sys.stderr)
        if outcome.log_tail:
            print(f"last {len(outcome.log_tail)} log lines:", file=sys.stderr)
            for line in outcome.log_tail:
                print(f"  {line}", file=sys.stderr)
    else:
        print(f"\n{message}")
    return outcome.exit_code


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    overrides: dict[str, object] = {}
    if args.rounds is not None:
        overrides["loop.rounds"] = args.rounds
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.scoring is not None:
        overrides["scoring.mode"] = args.scoring
    if args.strategy is not None:
        overrides["strategy.name"] = args.strategy
    return overrides


def _command_submit(args: argparse.Namespace) -> int:
    from al_ray.cluster.submit import submit_round
    from al_ray.errors import ConfigError

    if args.more_rounds is not None and args.rounds is not None:
        raise ConfigError("give --rounds or --more-rounds, not both: --more-rounds counts from the last completed round")

    def announce(submission_id: str) -> None:
        print(f"submitted job {submission_id}", flush=True)

    outcome = submit_round(
        args.config,
        args.address,
        wait=args.follow,
        timeout_s=args.timeout,
        overrides=_overrides(args),
        resume=args.resume,
        more_rounds=args.more_rounds,
        on_log=_write_log,
        on_submitted=announce,
    )
    if args.follow:
        return _report_end(outcome)
    address = outcome.address
    print(f"  status: al-ray jobs status {outcome.submission_id} --address {address}")
    print(f"  logs:   al-ray jobs logs {outcome.submission_id} --follow --address {address}")
    print(f"  stop:   al-ray jobs stop {outcome.submission_id} --address {address}")
    return 0


def _jobs_api(args: argparse.Namespace):
    from al_ray.cluster.address import resolve_address
    from al_ray.cluster.config import ClusterConfig
    from al_ray.cluster.submit import connect

    cluster = ClusterConfig()
    if args.config is not None:
        from al_ray.config import load_config

        cluster = load_config(args.config).cluster
    address = resolve_address(args.address, cluster.address)
    return connect(address, timeout_s=cluster.request_timeout_s)


def _command_jobs_status(args: argparse.Namespace) -> int:
    outcome = _jobs_api(args).outcome(args.submission_id, with_tail=False)
    print(f"{outcome.submission_id}: {outcome.status}")
    if outcome.message:
        print(outcome.message)
    return 0


def _command_jobs_logs(args: argparse.Namespace) -> int:
    jobs = _jobs_api(args)
    if not args.follow:
        _write_log(jobs.logs(args.submission_id))
        return 0
    return _report_end(jobs.follow(args.submission_id, on_log=_write_log, timeout_s=args.timeout))


def _command_jobs_stop(args: argparse.Namespace) -> int:
    jobs = _jobs_api(args)
    if not jobs.stop(args.submission_id):
        outcome = jobs.outcome(args.submission_id, with_tail=False)
        print(f"job {args.submission_id} was not running; it is {outcome.status}")
        return 0
    deadline = time.monotonic() + _STOP_WAIT_S
    outcome = jobs.outcome(args.submission_id, with_tail=False)
    while not outcome.is_terminal and time.monotonic() < deadline:
        time.sleep(0.5)
        outcome = jobs.outcome(args.submission_id, with_tail=False)
    print(f"job {args.submission_id} {outcome.status}" + ("" if outcome.is_terminal else " (stop requested)"))
    return 0


def _command_check(args: argparse.Namespace) -> int:
    from al_ray.cluster.check import format_result, run_checks

    results = run_checks(args.config, args.address)
    for result in results:
        print(format_result(result))
    failed = [result.item for result in results if result.failed]
    warned = [result.item for result in results if result.status == "warn"]
    if warned:
        print(f"\nwarnings: {', '.join(warned)}", file=sys.stderr)
    if failed:
        print(f"\n{len(failed)} of {len(results)} checks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
