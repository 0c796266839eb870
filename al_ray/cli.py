"""The ``al-ray`` command.

Exit status: 0 on success, 2 for a user error (bad config, missing file,
unknown strategy), 1 for an unexpected failure, 130 when interrupted, and 3
when ``serve deploy --exit-after-rollout`` rolled the challenger back. A run
that stops because the pool is exhausted or the label budget is reached is a
success.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from al_ray.errors import AlRayError, ConfigError, ResumeError, TrackingError
from al_ray.runtime import Terminated, raise_on_sigterm

__all__ = ["main"]

logger = logging.getLogger("al_ray.cli")

_ROW_FORMAT = "{:>24}  {:>5}  {:>9}  {:>8}  {:>8}  {:>7}  {:>6}  {:>11}"
_ROW_HEADER = ("strategy", "round", "n_labeled", "accuracy", "macro_f1", "seconds", "path", "rows/s")


def _whole_number(minimum: int):
    """Return an argparse type that accepts whole numbers of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="al-ray", description="Active learning on Ray: score the pool, query labels, retrain, track."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every round's details at INFO")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run (or resume) active learning from a YAML config")
    run.add_argument("config", type=Path, help="YAML config, e.g. configs/mnist.yaml")
    _add_run_options(run)
    run.add_argument("--strategy", help="query strategy; overrides strategy.name (see `al-ray strategies`)")
    run.add_argument("--output", type=Path, help="output folder; default: runs/<name>/<strategy>")
    resume = run.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue the run in --output from its last completed round")
    resume.add_argument(
        "--more-rounds",
        type=_whole_number(1),
        metavar="N",
        help="run N rounds past the last completed one, starting the run if there is none yet "
        "(for scheduled rounds: the same command works every time)",
    )

    compare = commands.add_parser(
        "compare", help="run several strategies with the same seed and budget, and compare them"
    )
    compare.add_argument("config", type=Path, help="YAML config, e.g. configs/mnist.yaml")
    _add_run_options(compare)
    compare.add_argument(
        "--strategies", default="margin,random", help="comma-separated strategy names (default: margin,random)"
    )
    compare.add_argument("--output", type=Path, help="output folder; default: runs/<name>/compare")
    compare.add_argument(
        "--resume", action="store_true", help="continue each strategy's run in --output where it stopped"
    )

    commands.add_parser("strategies", help="list the query strategies and what each needs")

    models = commands.add_parser("models", help="list and inspect the model versions that runs registered in MLflow")
    actions = models.add_subparsers(dest="models_action", required=True, metavar="ACTION")
    _add_store_options(actions.add_parser("list", help="list every version of a registered model, one per round"))
    show = actions.add_parser("show", help="print one version's lineage tags, metrics and model URI")
    show.add_argument("version", help="version number, or the alias champion or challenger")
    _add_store_options(show)

    from al_ray.serving.commands import add_serve_parser

    add_serve_parser(commands)

    # Each package adds its own commands; a command's parser sets `handler`.
    from al_ray.cluster.commands import add_parsers as add_cluster_parsers
    from al_ray.labeling.commands import add_parsers as add_labeling_parsers
    from al_ray.monitoring.commands import add_parsers as add_monitoring_parsers

    add_labeling_parsers(commands)
    add_cluster_parsers(commands)
    add_monitoring_parsers(commands)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--rounds", type=_whole_number(1), help="query rounds; overrides loop.rounds")
    command.add_argument("--seed", type=_whole_number(0), help="root seed; overrides seed")
    command.add_argument(
        "--scoring", choices=("auto", "local", "ray"), help="scoring path; overrides scoring.mode"
    )


def _add_store_options(command: argparse.ArgumentParser) -> None:
    store = command.add_mutually_exclusive_group()
    store.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI, e.g. http://127.0.0.1:5000")
    store.add_argument(
        "--output", type=Path, metavar="RUN_DIR", help="output folder of a run; reads its RUN_DIR/mlflow.db"
    )
    command.add_argument("--name", help="registered model name; needed only when the store contains several")


def _configure_logging(verbose: bool) -> None:
    # MLflow sets its own logger level when imported; this is its documented switch.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    package_logger = logging.getLogger("al_ray")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO if verbose else logging.WARNING)
    package_logger.propagate = False
    # MLflow logs its store migrations at INFO on first use of a new store.
    for noisy in ("mlflow", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(args: argparse.Namespace, strategy: str | None = None):
    from al_ray.config import load_config

    config = load_config(args.config)
    overrides: dict[str, object] = {}
    if args.rounds is not None:
        overrides["loop.rounds"] = args.rounds
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.scoring is not None:
        overrides["scoring.mode"] = args.scoring
    if strategy is not None:
        overrides["strategy.name"] = strategy
    return config.with_overrides(**overrides) if overrides else config


class _RoundPrinter:
    """Print the table header before the first round, so an early error prints alone."""

    def __init__(self) -> None:
        self.header_printed = False

    def for_strategy(self, strategy: str):
        return _print_round(strategy, self)


def _print_round(strategy: str, printer: _RoundPrinter):
    def emit(record) -> None:
        if not printer.header_printed:
            print(_ROW_FORMAT.format(*_ROW_HEADER), flush=True)
            printer.header_printed = True
        print(
            _ROW_FORMAT.format(
                strategy,
                record.round_index,
                record.n_labeled,
                f"{record.accuracy:.4f}",
                f"{record.macro_f1:.4f}",
                f"{record.seconds:.2f}",
                record.scoring_path,
                f"{record.scoring_rows_per_s:,.0f}" if record.scoring_rows_per_s else "-",
            ),
            flush=True,
        )

    return emit


def _command_run(args: argparse.Namespace) -> int:
    from al_ray.loop import ActiveLearningLoop

    config = _load(args, args.strategy)
    resume = args.resume
    if args.more_rounds is not None:
        if args.rounds is not None:
            raise ConfigError("give --rounds or --more-rounds, not both: --more-rounds counts from the last completed round")
        config, resume = _plan_more_rounds(config, args.output, args.more_rounds)
    started = time.perf_counter()
    loop = ActiveLearningLoop(config, output_dir=args.output, on_round=_RoundPrinter().for_strategy(config.strategy.name))
    result = loop.run(resume=resume)
    _print_summary({config.strategy.name: result}, time.perf_counter() - started)
    return 0


def _plan_more_rounds(config, output: Path | None, more: int):
    """Return the config and resume flag that run ``more`` rounds past the run's last completed one."""
    from al_ray.labels import LabelStore
    from al_ray.loop.runner import default_output_dir

    location = config.labels.store or (output or default_output_dir(config)) / "labels.db"
    last = None
    started = False
    if not isinstance(location, Path) or location.exists():
        with LabelStore(location) as store:
            last = store.last_completed_round()
            started = store.get_meta("config_fingerprint") is not None
    if last is None:
        # No run yet, or one killed before its first model: start or resume it.
        return config.with_overrides(**{"loop.rounds": more}), started
    logger.info("continuing from round %d for %d more rounds", last, more)
    return config.with_overrides(**{"loop.rounds": last + more}), True


def _command_compare(args: argparse.Namespace) -> int:
    from al_ray.loop import ActiveLearningLoop
    from al_ray.loop.outputs import write_csv_atomic, write_learning_curve_plot
    from al_ray.strategies import make_strategy

    names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    if len(names) < 1:
        raise ConfigError(f"--strategies needs at least one strategy name, got {args.strategies!r}")
    for name in names:
        make_strategy(name)
    configs = {name: _load(args, name) for name in names}
    base = next(iter(configs.values()))
    root = args.output or Path("runs") / base.name / "compare"
    if args.resume and not any((root / name / "labels.db").exists() for name in names):
        raise ResumeError(
            f"nothing to resume: no strategy of {', '.join(names)} has a run in {Path(root).resolve()}; "
            "run without --resume to start, or pass the --output of the comparison to continue"
        )
    started = time.perf_counter()
    results = {}
    printer = _RoundPrinter()
    # One Ray session for every strategy, started only if a run needs the Ray path.
    with contextlib.ExitStack() as ray_stack:
        for name, config in configs.items():
            loop = ActiveLearningLoop(
                config,
                output_dir=root / name,
                tracking_root=root,
                on_round=printer.for_strategy(name),
                ray_stack=ray_stack,
            )
            # With --resume, strategies that had not started yet start now.
            resume = args.resume and (root / name / "labels.db").exists()
            results[name] = loop.run(resume=resume)
    curves = {
        name: [{"n_labeled": r.n_labeled, "accuracy": r.accuracy, "macro_f1": r.macro_f1} for r in result.rounds]
        for name, result in results.items()
    }
    write_learning_curve_plot(root / "learning_curve.png", curves, f"{base.name}: seed {base.seed}")
    write_csv_atomic(
        root / "comparison.csv",
        ("strategy", "round", "n_labeled", "accuracy", "macro_f1", "seconds"),
        [
            (name, r.round_index, r.n_labeled, f"{r.accuracy:.6f}", f"{r.macro_f1:.6f}", f"{r.seconds:.3f}")
            for name, result in results.items()
            for r in result.rounds
        ],
    )
    _print_summary(results, time.perf_counter() - started)
    print(f"comparison plot: {root / 'learning_curve.png'}")
    return 0


def _print_summary(results: dict, wall_seconds: float) -> None:
    print()
    print(f"{'strategy':>24}  {'status':>20}  {'rounds':>6}  {'n_labeled':>9}  {'accuracy':>8}  {'macro_f1':>8}  output")
    for name, result in results.items():
        final = result.final
        print(
            f"{name:>24}  {result.status:>20}  {len(result.rounds) - 1:>6}  "
            f"{final.n_labeled if final else 0:>9}  {final.accuracy if final else float('nan'):>8.4f}  "
            f"{final.macro_f1 if final else float('nan'):>8.4f}  {result.output_dir}"
        )
    print(f"wall time: {wall_seconds:.1f} s")


def _command_strategies(args: argparse.Namespace) -> int:
    from al_ray.strategies import STRATEGIES

    rows = [
        (name, ", ".join(sorted(need.value for need in STRATEGIES[name].needs)) or "-", STRATEGIES[name].description)
        for name in sorted(STRATEGIES)
    ]
    name_width = max(len(row[0]) for row in rows)
    needs_width = max(len("needs"), *(len(row[1]) for row in rows))
    print(f"{'name':<{name_width}}  {'needs':<{needs_width}}  description")
    for name, needs, description in rows:
        print(f"{name:<{name_width}}  {needs:<{needs_width}}  {description}")
    return 0


def _command_models(args: argparse.Namespace) -> int:
    from al_ray.tracking.registry import ModelRegistry

    if args.tracking_uri is not None:
        uri = args.tracking_uri
    elif args.output is not None:
        # The loop's default store when tracking.uri is unset.
        uri = f"sqlite:///{(args.output / 'mlflow.db').resolve()}"
    else:
        raise ConfigError(
            "no tracking store given; pass --output RUN_DIR (a run's output folder) or --tracking-uri URI"
        )
    registry = ModelRegistry(uri, existing=True)
    name = args.name or _only_registered_model(registry, uri)
    if args.models_action == "list":
        _print_versions(registry.list_versions(name), name, uri)
    else:
        _print_version(registry, name, args.version)
    return 0


def _only_registered_model(registry, uri: str) -> str:
    names = registry.registered_models()
    if not names:
        raise TrackingError(
            f"no registered models in {uri!r}; a run registers one version per round when tracking is enabled"
        )
    if len(names) > 1:
        raise ConfigError(f"{uri!r} contains several registered models ({', '.join(names)}); choose one with --name")
    return names[0]


_VERSION_FORMAT = "{:>7}  {:<20}  {:>5}  {:>9}  {:>8}  {:<18}  {:>6}"


def _print_versions(versions: list, name: str, uri: str) -> None:
    if not versions:
        raise TrackingError(f"registered model {name!r} not found in {uri!r}, or it has no versions")
    print(f"registered model: {name}")
    print(_VERSION_FORMAT.format("version", "aliases", "round", "n_labeled", "accuracy", "strategy", "parent"))
    for info in versions:
        print(
            _VERSION_FORMAT.format(
                info.version,
                ",".join(info.aliases) or "-",
                "-" if info.round_index is None else info.round_index,
                "-" if info.n_labeled is None else info.n_labeled,
                "-" if info.accuracy is None else f"{info.accuracy:.4f}",
                info.strategy or "-",
                info.parent_version or "-",
            )
        )


def _print_version(registry, name: str, version: str) -> None:
    info = registry.describe(name, version)
    print(f"registered model: {info.name}")
    print(f"version: {info.version}")
    print(f"aliases: {', '.join(info.aliases) or '-'}")
    print(f"created: {info.created.isoformat(timespec='seconds')}")
    print(f"run_id: {info.run_id or '-'}")
    print(f"source: {info.source}")
    print(f"artifact_uri: {registry.artifact_uri(name, info.version)}")
    print("tags:")
    for key, value in sorted(info.tags.items()):
        print(f"  {key}: {value}")
    print("metrics:")
    for key, value in sorted(info.metrics.items()):
        print(f"  {key}: {value:.6g}")


def _command_serve(args: argparse.Namespace) -> int:
    from al_ray.serving.commands import command_serve

    return command_serve(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``al-ray`` command and return its exit status."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    previous_handler = raise_on_sigterm()
    handlers = {
        "run": _command_run,
        "compare": _command_compare,
        "strategies": _command_strategies,
        "models": _command_models,
        "serve": _command_serve,
    }
    try:
        handler = getattr(args, "handler", None) or handlers[args.command]
        return handler(args)
    except AlRayError as exc:
        print(f"al-ray: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("al-ray: terminated by SIGTERM; continue later with --resume", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print("al-ray: interrupted; continue later with --resume", file=sys.stderr)
        return 130
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)


if __name__ == "__main__":
    sys.exit(main())
