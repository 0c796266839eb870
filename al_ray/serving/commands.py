"""``al-ray serve deploy|status|promote|rollback|export-config``: canary serving from the command line.

``deploy`` runs in the foreground. It starts Ray and Serve and serves the
champion and challenger versions of a run's registered model. Then it runs
the canary rollout, moves the registry's ``champion`` alias on promotion, and
keeps serving until interrupted, or exits after the rollout. The other
actions talk to a running router over HTTP, from another terminal.
``export-config`` writes the same applications as a Serve config file, for
``serve deploy`` or a KubeRay RayService; it needs no Ray.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import time
from pathlib import Path

__all__ = ["add_serve_parser", "command_serve"]

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8000"

# Exit status of ``deploy --exit-after-rollout`` when the challenger was rolled back.
ROLLED_BACK = 3


def add_serve_parser(commands) -> None:
    """Add the ``serve`` command and its actions to the ``al-ray`` parser."""
    serve = commands.add_parser("serve", help="serve model versions on Ray Serve with a canary rollout")
    actions = serve.add_subparsers(dest="serve_action", required=True, metavar="ACTION")

    deploy = actions.add_parser(
        "deploy", help="serve a run's champion and challenger versions and roll the challenger out"
    )
    deploy.add_argument("config", type=Path, help="the run's YAML config (its serving section applies)")
    deploy.add_argument("--output", type=Path, help="the run's output folder; default: runs/<name>/<strategy>")
    deploy.add_argument("--name", help="registered model name; default: tracking.registered_model or <name>-<strategy>")
    deploy.add_argument("--champion", default="champion", help="version number or alias (default: champion)")
    deploy.add_argument(
        "--challenger", default="challenger", help="version number or alias, or 'none' (default: challenger)"
    )
    deploy.add_argument("--no-rollout", action="store_true", help="serve at serving.weights without a rollout")
    deploy.add_argument("--decision-log", type=Path, help="JSON lines of rollout decisions; default: OUTPUT/rollout.jsonl")
    deploy.add_argument("--max-duration", type=float, help="roll back if the rollout has not ended after this many seconds")
    deploy.add_argument("--exit-after-rollout", action="store_true", help="stop serving once the rollout ends")

    export = actions.add_parser(
        "export-config",
        help="write the canary's Ray Serve config (for `serve deploy` or a RayService's serveConfigV2)",
    )
    export.add_argument("config", type=Path, help="the run's YAML config (its serving and tracking sections apply)")
    export.add_argument("--output", type=Path, help="file to write; default: print to standard output")
    export.add_argument(
        "--tracking-uri", metavar="URI", help="MLflow registry URI the Serve replicas reach; default: tracking.uri"
    )
    export.add_argument("--name", help="registered model name; default: tracking.registered_model or <name>-<strategy>")
    export.add_argument(
        "--champion", default="champion", help="version number or alias, resolved on the cluster (default: champion)"
    )
    export.add_argument(
        "--challenger", default="challenger", help="version number or alias, or 'none' (default: challenger)"
    )

    for action, text in (
        ("status", "print the live versions, weights and the current stats window"),
        ("promote", "make the challenger the champion, with all traffic (the registry alias stays)"),
        ("rollback", "send no traffic to the challenger"),
    ):
        parser = actions.add_parser(action, help=text)
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--url", help=f"the router's URL (default: {DEFAULT_URL})")
        where.add_argument(
            "--config", type=Path,
            help="a config whose serving.host and serving.port name the router; "
            "promote and rollback are audited when its monitoring.audit is enabled",
        )


def command_serve(args: argparse.Namespace) -> int:
    """Run one ``al-ray serve`` action and return the exit status."""
    if args.serve_action == "deploy":
        return _deploy(args)
    if args.serve_action == "export-config":
        return _export_config(args)
    from al_ray.serving.client import RouterClient

    url = args.url or DEFAULT_URL
    config = None
    if args.config is not None:
        from al_ray.config import load_config
        from al_ray.serving.deploy import router_url

        config = load_config(args.config)
        url = router_url(config.serving)
    client = RouterClient(url)
    if args.serve_action == "status":
        print(json.dumps({"versions": client.versions(), "stats": client.stats()}, indent=2, sort_keys=True))
        return 0
    response = client.promote() if args.serve_action == "promote" else client.rollback()
    print(json.dumps(response, indent=2, sort_keys=True))
    if config is not None:
        _audit_manual_change(config, args.serve_action, response)
    return 0


def _audit_manual_change(config, action: str, response: dict) -> None:
    """Audit a manual promote or rollback in the run's audit log, when the config enables one."""
    from al_ray.loop.runner import default_output_dir
    from al_ray.monitoring.rollout_audit import RolloutAudit

    name = config.tracking.registered_model or f"{config.name}-{config.strategy.name}"
    with contextlib.closing(RolloutAudit.open(config, default_output_dir(config), name)) as audit:
        audit.manual(action, response)


def _deploy(args: argparse.Namespace) -> int:
    from al_ray.config import load_config
    from al_ray.loop.runner import default_output_dir
    from al_ray.monitoring.rollout_audit import RolloutAudit
    from al_ray.runtime import ray_session
    from al_ray.seeding import derive_seed
    from al_ray.serving.canary import CanaryController, run_rollout
    from al_ray.serving.deploy import deploy, shutdown
    from al_ray.tracking.registry import ModelRegistry

    config = load_config(args.config)
    output = args.output or default_output_dir(config)
    uri = config.tracking.uri or f"sqlite:///{(output / 'mlflow.db').resolve()}"
    registry = ModelRegistry(uri, existing=True)
    name = args.name or config.tracking.registered_model or f"{config.name}-{config.strategy.name}"
    champion = _version_spec(registry, uri, name, args.champion)
    challenger = None if args.challenger.lower() == "none" else _version_spec(registry, uri, name, args.challenger)
    if challenger is not None and challenger.label == champion.label:
        # After a promotion both aliases name one version: nothing to roll out.
        print(f"the challenger is the champion, version {champion.label}; serving it alone", flush=True)
        challenger = None
    rollout = challenger is not None and not args.no_rollout
    audit = RolloutAudit.open(config, output, name)

    with contextlib.closing(audit), ray_session(config.ray):
        client = deploy(config.serving, champion, challenger, seed=derive_seed(config.seed, "serving"))
        audit.served("serve_champion", champion.label, "served as the champion by `al-ray serve deploy`")
        if challenger is not None:
            audit.served(
                "serve_challenger", challenger.label,
                f"served as the challenger by `al-ray serve deploy` at weight {config.serving.weights['challenger']:g}",
            )
        _stop_on_signals()
        print(f"serving {name} at {client.base_url}: champion version {champion.label}"
              + (f", challenger version {challenger.label}" if challenger else ""), flush=True)
        try:
            if rollout:
                decision = run_rollout(
                    client,
                    CanaryController(config.serving.rollout, config.serving.guards),
                    decision_log=args.decision_log or output / "rollout.jsonl",
                    on_decision=audit.decision_recorder(challenger.label, then=_DecisionPrinter()),
                    max_duration_s=args.max_duration,
                )
                if decision.action == "promote":
                    registry.set_alias(name, "champion", challenger.label)
                    audit.served("set_champion_alias", challenger.label, f"the rollout promoted it: {decision.reason}")
                    print(f"promoted version {challenger.label} to champion in the registry", flush=True)
                elif args.exit_after_rollout:
                    return ROLLED_BACK
            if args.exit_after_rollout:
                return 0
            print("serving; press Ctrl-C to stop", flush=True)
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            print("stopping", flush=True)
            return 0
        finally:
            shutdown()


def _export_config(args: argparse.Namespace) -> int:
    from al_ray.config import load_config
    from al_ray.errors import ConfigError
    from al_ray.serving.export import (
        build_serve_config,
        dump_serve_config,
        write_serve_config,
    )

    config = load_config(args.config)
    uri = args.tracking_uri or config.tracking.uri
    if uri is None:
        raise ConfigError(
            f"{args.config} sets no tracking.uri; set it to the MLflow server the Serve replicas reach "
            "(such as http://mlflow:5000 on Kubernetes), or pass --tracking-uri"
        )
    if not uri.startswith(("http://", "https://", "databricks")):
        # A sqlite: or file: store is reachable only where that file is, such as a one-machine cluster.
        logger.warning("tracking URI %s is a local store: every Serve replica must see that file", uri)
    name = args.name or config.tracking.registered_model or f"{config.name}-{config.strategy.name}"
    challenger = None if args.challenger.lower() == "none" else args.challenger
    document = build_serve_config(
        config, tracking_uri=uri, model_name=name, champion=args.champion, challenger=challenger
    )
    header = f"Ray Serve config of {name}, written by `al-ray serve export-config {args.config}`."
    text = dump_serve_config(document, header=header)
    if args.output is None:
        print(text, end="", flush=True)
    else:
        write_serve_config(text, args.output)
        print(f"wrote the Serve config of {name} to {args.output}", flush=True)
    return 0


def _stop_on_signals() -> None:
    """Stop serving on SIGINT and SIGTERM, also when started in the background.

    A shell starts background jobs with SIGINT ignored, and Ray's own SIGTERM
    handler prints a stack dump; both end here in a clean shutdown instead.
    """

    def stop(signum, frame) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _version_spec(registry, uri: str, name: str, version: str):
    from al_ray.serving.spec import VersionSpec

    # Labels are version numbers, so an alias resolves once, at deploy time.
    info = registry.describe(name, version)
    return VersionSpec(label=str(info.version), tracking_uri=uri, name=name, version=str(info.version))


class _DecisionPrinter:
    """Print each rollout decision, except a hold that repeats the one before."""

    def __init__(self) -> None:
        self._last: tuple | None = None

    def __call__(self, decision) -> None:
        key = (decision.action, decision.step, decision.cause)
        if decision.action == "hold" and key == self._last:
            return
        self._last = key
        print(
            f"rollout: {decision.action} (step {decision.step}, challenger weight "
            f"{decision.challenger_weight:g}): {decision.reason}",
            flush=True,
        )
