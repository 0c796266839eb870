"""Committee strategies and expected gradient length through the whole loop."""

from __future__ import annotations

import csv

import pytest

from al_ray.cli import main


def _queries(path):
    with open(path / "queries.csv", newline="") as stream:
        return [(row["round"], row["row_id"]) for row in csv.DictReader(stream)]


# Every committee strategy reads the same inputs through the loop, and each
# measure is checked by hand in the strategy tests: one vote-based and one
# probability-based measure cover the loop (bald runs in the next test).
@pytest.mark.parametrize("strategy", ["vote_entropy", "max_disagreement"])
def test_committee_strategy_runs(ray_local, small_config, tmp_path, strategy):
    config = small_config(
        loop={"rounds": 2, "batch_size": 10},
        model={"estimator": "logistic_regression", "params": {"max_iter": 100}, "committee": {"size": 3}},
    )
    assert main(["run", str(config), "--strategy", strategy, "--output", str(tmp_path / "a")]) == 0
    queries = _queries(tmp_path / "a")
    assert len(queries) == 20
    assert len({row_id for _, row_id in queries}) == 20


def test_committee_repeatable_and_default_size(ray_local, small_config, tmp_path):
    # No model.committee: the strategy's need brings a default bagged committee.
    config = small_config(loop={"rounds": 2, "batch_size": 10})
    assert main(["run", str(config), "--strategy", "bald", "--output", str(tmp_path / "a")]) == 0
    assert main(["run", str(config), "--strategy", "bald", "--output", str(tmp_path / "b")]) == 0
    assert _queries(tmp_path / "a") == _queries(tmp_path / "b")


def test_committee_members_list_on_ray_path(ray_local, small_config, tmp_path):
    members = [
        {"estimator": "logistic_regression", "params": {"max_iter": 100}},
        {"estimator": "gaussian_nb"},
        {"estimator": "extra_trees", "params": {"n_estimators": 10}},
    ]
    config = small_config(
        loop={"rounds": 1, "batch_size": 10},
        model={"committee": {"members": members}},
        scoring={"mode": "local"},
    )
    assert main(["run", str(config), "--strategy", "vote_entropy", "--output", str(tmp_path / "local")]) == 0
    assert main(
        ["run", str(config), "--strategy", "vote_entropy", "--scoring", "ray", "--output", str(tmp_path / "ray")]
    ) == 0
    assert _queries(tmp_path / "local") == _queries(tmp_path / "ray")


def test_expected_gradient_length_runs(small_config, tmp_path):
    config = small_config(loop={"rounds": 2, "batch_size": 10}, model={"standardize": True})
    assert main(["run", str(config), "--strategy", "expected_gradient_length", "--output", str(tmp_path / "e")]) == 0
    assert len(_queries(tmp_path / "e")) == 20


@pytest.mark.parametrize(
    ("committee", "message"),
    [
        ({"size": 1}, "model.committee.size: Input should be greater than or equal to 2"),
        ({"members": [{"estimator": "logistic_regression"}]}, "a committee needs at least 2 members, got 1"),
        ({"size": 3, "members": [{"estimator": "knn"}, {"estimator": "knn"}]}, "set exactly one of"),
    ],
)
def test_committee_config_errors(small_config, tmp_path, capsys, committee, message):
    config = small_config(model={"committee": committee})
    assert main(["run", str(config), "--strategy", "bald", "--output", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_unknown_member_estimator(small_config, tmp_path, capsys):
    config = small_config(model={"committee": {"members": [{"estimator": "knn"}, {"estimator": "forest"}]}})
    assert main(["run", str(config), "--strategy", "bald", "--output", str(tmp_path / "o")]) == 2
    assert "unknown estimator 'forest'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("strategy", ["coreset", "badge", "cluster_margin", "information_density"])
def test_batch_diverse_strategy_runs(small_config, tmp_path, strategy):
    config = small_config(loop={"rounds": 2, "batch_size": 10})
    assert main(["run", str(config), "--strategy", strategy, "--output", str(tmp_path / "d")]) == 0
    queries = _queries(tmp_path / "d")
    assert len(queries) == 20
    assert len({row_id for _, row_id in queries}) == 20


def test_badge_ray_equals_local(ray_local, small_config, tmp_path):
    config = small_config(loop={"rounds": 1, "batch_size": 10}, strategy={"name": "badge", "params": {"candidate_factor": 5}})
    assert main(["run", str(config), "--output", str(tmp_path / "local")]) == 0
    assert main(["run", str(config), "--scoring", "ray", "--output", str(tmp_path / "ray")]) == 0
    assert _queries(tmp_path / "local") == _queries(tmp_path / "ray")


def test_candidate_factor_invalid(small_config, tmp_path, capsys):
    config = small_config(strategy={"name": "coreset", "params": {"candidate_factor": 0}})
    assert main(["run", str(config), "--output", str(tmp_path / "o")]) == 2
    assert "candidate_factor must be a whole number >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_committee_logs_member_models(ray_local, small_config, tmp_path):
    from mlflow.tracking import MlflowClient

    config = small_config(
        loop={"rounds": 1, "batch_size": 10},
        model={"committee": {"size": 2}},
        tracking={"enabled": True, "experiment": "committee"},
    )
    output = tmp_path / "m"
    assert main(["run", str(config), "--strategy", "vote_entropy", "--output", str(output)]) == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{output / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("committee")
    models = client.search_logged_models([experiment.experiment_id])
    # The final committee's members, and each round's whole committee as a registered version.
    assert sorted(model.name for model in models) == ["member_0", "member_1", "round_0000", "round_0001"]


def test_committee_cold_start(ray_local, small_config, tmp_path):
    # No labels: round 1 queries with k-center, round 2 with the committee it then trains.
    config = small_config(
        data={"initial_labeled": 0},
        loop={"rounds": 2, "batch_size": 10},
        model={"estimator": "logistic_regression", "params": {"max_iter": 100}, "committee": {"size": 3}},
    )
    assert main(["run", str(config), "--strategy", "vote_entropy", "--output", str(tmp_path / "a")]) == 0
    with open(tmp_path / "a" / "learning_curve.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["n_labeled"] for row in rows] == ["0", "10", "20"]
    assert len(set(_queries(tmp_path / "a"))) == 20
