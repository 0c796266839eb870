"""The job of a scheduled round: `al-ray run CONFIG --more-rounds N`, built without contacting a cluster.

192.0.2.10 is a documentation address (RFC 5737) that stands for a remote
head node; every error here is raised before it would be contacted.
"""

from __future__ import annotations

import shlex

import pytest

from al_ray.cli import build_parser, main
from al_ray.cluster.job_spec import CONFIG_ENV_VAR
from al_ray.cluster.submit import prepare_submission, submit_round
from al_ray.errors import ConfigError

LOCAL = "http://127.0.0.1:8265"
REMOTE = "http://192.0.2.10:8265"


def test_more_rounds_entrypoint(cluster_config):
    spec = prepare_submission(cluster_config(), LOCAL, more_rounds=1).spec

    config_file = f".al-ray-job-{spec.submission_id}.yaml"
    assert spec.entrypoint == (
        f"printf '%s' \"${CONFIG_ENV_VAR}\" > \"{config_file}\" && "
        f"exec python -m al_ray.cli run \"{config_file}\" --more-rounds 1"
    )


def test_more_rounds_entrypoint_parses(cluster_config):
    spec = prepare_submission(cluster_config(), LOCAL, more_rounds=3).spec

    # The command after `exec python -m al_ray.cli` is what the job's al-ray parses.
    words = shlex.split(spec.entrypoint.split(" && exec python -m al_ray.cli ", 1)[1])
    args = build_parser().parse_args(words)
    assert (args.command, args.more_rounds, args.resume, args.rounds) == ("run", 3, False, None)


def test_more_rounds_keeps_loop_rounds(cluster_config):
    # The job's `al-ray run --more-rounds` sets loop.rounds from the run's store, so the config is sent as is.
    spec = prepare_submission(cluster_config(), LOCAL, more_rounds=1).spec
    assert "rounds: 2" in spec.config_text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"more_rounds": 0}, "more_rounds must be a whole number of at least 1, got 0"),
        ({"more_rounds": True}, "more_rounds must be a whole number of at least 1, got True"),
        ({"more_rounds": 1, "resume": True}, "give resume or more_rounds, not both"),
        ({"more_rounds": 1, "overrides": {"loop.rounds": 3}}, r"give loop.rounds \(3\) or more_rounds \(1\), not both"),
    ],
)
def test_more_rounds_invalid(cluster_config, options, message):
    with pytest.raises(ConfigError, match=message):
        prepare_submission(cluster_config(), LOCAL, **options)


def test_submit_round_checks_before_contact(cluster_config):
    # The remote address is never contacted: the arguments are rejected first.
    with pytest.raises(ConfigError, match="give resume or more_rounds, not both"):
        submit_round(cluster_config(), REMOTE, more_rounds=1, resume=True)


def test_submit_cli_rejects_rounds_with_more_rounds(cluster_config, capsys):
    status = main(["submit", str(cluster_config()), "--address", REMOTE, "--rounds", "3", "--more-rounds", "1"])

    assert status == 2
    assert "give --rounds or --more-rounds, not both" in capsys.readouterr().err


def test_submit_cli_resume_excludes_more_rounds(cluster_config, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["submit", str(cluster_config()), "--address", REMOTE, "--resume", "--more-rounds", "1"])

    assert exited.value.code == 2
    assert "not allowed with argument --resume" in capsys.readouterr().err
