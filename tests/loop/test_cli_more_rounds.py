"""`al-ray run --more-rounds N`: the one command a schedule repeats, starting or continuing a run."""

from __future__ import annotations

import csv

from al_ray.cli import main


def _rounds(output):
    with open(output / "learning_curve.csv", newline="") as stream:
        return [int(row["round"]) for row in csv.DictReader(stream)]


def test_more_rounds_starts_then_continues(small_config, tmp_path):
    config = small_config()
    output = tmp_path / "out"
    # No run yet: it starts, with round 0 and one query round.
    assert main(["run", str(config), "--output", str(output), "--more-rounds", "1"]) == 0
    assert _rounds(output) == [0, 1]
    # The same command again continues past the last completed round.
    assert main(["run", str(config), "--output", str(output), "--more-rounds", "1"]) == 0
    assert _rounds(output) == [0, 1, 2]
    assert main(["run", str(config), "--output", str(output), "--more-rounds", "2"]) == 0
    assert _rounds(output) == [0, 1, 2, 3, 4]


def test_more_rounds_with_rounds_is_refused(small_config, tmp_path, capsys):
    config = small_config()
    code = main(["run", str(config), "--output", str(tmp_path / "out"), "--more-rounds", "1", "--rounds", "3"])
    assert code == 2
    assert "give --rounds or --more-rounds, not both" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
