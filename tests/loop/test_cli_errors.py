"""User mistakes exit with status 2, one clear message, no traceback, nothing written."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from al_ray.cli import main


def _fails(argv, capsys, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    return err


def test_missing_config(tmp_path, capsys):
    _fails(["run", str(tmp_path / "nope.yaml")], capsys, "config file not found", "nope.yaml")


def test_unknown_key(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 1, "batchsize": 5})
    _fails(["run", str(config), "--output", str(tmp_path / "o")], capsys, "loop.batchsize", "did you mean 'batch_size'")
    assert not (tmp_path / "o").exists()


def test_batch_size_zero(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 1, "batch_size": 0})
    _fails(["run", str(config), "--output", str(tmp_path / "o")], capsys, "loop.batch_size", "greater than 0")
    assert not (tmp_path / "o").exists()


def test_unknown_strategy_option(small_config, tmp_path, capsys):
    config = small_config()
    _fails(
        ["run", str(config), "--strategy", "magin", "--output", str(tmp_path / "o")],
        capsys,
        "unknown strategy",
        "margin",
    )
    assert not (tmp_path / "o").exists()


def test_unknown_estimator(small_config, tmp_path, capsys):
    config = small_config(model={"estimator": "logistic_regresion"})
    _fails(["run", str(config), "--output", str(tmp_path / "o")], capsys, "logistic_regresion", "logistic_regression")
    assert not (tmp_path / "o").exists()


def test_missing_data_file(small_config, tmp_path, capsys):
    config = small_config(data={"dataset": None, "path": "missing.csv", "label_column": "y", "initial_labeled": 4, "test_size": 0.2})
    _fails(["run", str(config), "--output", str(tmp_path / "o")], capsys, "missing.csv")
    assert not (tmp_path / "o").exists()


def _csv(tmp_path, frame):
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    return path


def test_unknown_label_column(small_config, tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "label": ["x", "y"] * 30})
    _csv(tmp_path, frame)
    config = small_config(data={"dataset": None, "path": "rows.csv", "label_column": "class", "initial_labeled": 4, "test_size": 0.2})
    _fails(["run", str(config), "--output", str(tmp_path / "o")], capsys, "'class'", "label")
    assert not (tmp_path / "o").exists()


def test_nan_features(small_config, tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.normal(size=60)
    a[7] = np.nan
    frame = pd.DataFrame({"a": a, "b": rng.normal(size=60), "label": ["x", "y"] * 30})
    _csv(tmp_path, frame)
    config = small_config(data={"dataset": None, "path": "rows.csv", "label_column": "label", "initial_labeled": 4, "test_size": 0.2})
    err = _fails(["run", str(config), "--output", str(tmp_path / "o")], capsys, "7")
    assert "NaN" in err or "nan" in err
    assert not (tmp_path / "o").exists()


def test_user_csv_runs(small_config, tmp_path, capsys):
    rng = np.random.default_rng(0)
    labels = np.array(["x", "y", "z"] * 100)
    centers = {"x": 0.0, "y": 3.0, "z": 6.0}
    frame = pd.DataFrame(
        {
            "a": [centers[v] + rng.normal() for v in labels],
            "b": rng.normal(size=300),
            "label": labels,
        }
    )
    _csv(tmp_path, frame)
    config = small_config(
        data={"dataset": None, "path": "rows.csv", "label_column": "label", "initial_labeled": 6, "test_size": 0.25, "pool_size": None},
        loop={"rounds": 2, "batch_size": 10},
    )
    assert main(["run", str(config), "--output", str(tmp_path / "o")]) == 0


def test_bad_rounds_option(small_config, capsys):
    config = small_config()
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(config), "--rounds", "0"])
    assert exit_info.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err


def test_existing_output_needs_resume(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 1, "batch_size": 5})
    output = tmp_path / "o"
    assert main(["run", str(config), "--output", str(output)]) == 0
    capsys.readouterr()
    _fails(["run", str(config), "--output", str(output)], capsys, "already contains a run", "--resume")


def test_resume_with_changed_seed(small_config, tmp_path, capsys):
    config = small_config(loop={"rounds": 1, "batch_size": 5})
    output = tmp_path / "o"
    assert main(["run", str(config), "--output", str(output)]) == 0
    capsys.readouterr()
    _fails(["run", str(config), "--output", str(output), "--resume", "--seed", "9"], capsys, "seed", "original settings")


def test_resume_nothing_there(small_config, tmp_path, capsys):
    config = small_config()
    _fails(["run", str(config), "--output", str(tmp_path / "none"), "--resume"], capsys, "nothing to resume")


def test_unreachable_tracking_writes_nothing(small_config, tmp_path, capsys):
    config = small_config(tracking={"enabled": True, "uri": "http://127.0.0.1:9"})
    output = tmp_path / "out"

    assert main(["run", str(config), "--output", str(output)]) == 2

    assert "MLflow tracking server 'http://127.0.0.1:9' is unreachable" in capsys.readouterr().err
    assert not output.exists()


def test_compare_resume_without_run(small_config, tmp_path, capsys):
    output = tmp_path / "cmp"

    assert main(["compare", str(small_config()), "--output", str(output), "--resume"]) == 2

    assert "nothing to resume: no strategy of margin, random has a run in" in capsys.readouterr().err
    assert not output.exists()
