"""The labeling page shows a shipped text dataset's messages, not its hashed features."""

from __future__ import annotations

from al_ray.config import parse_config
from al_ray.labeling.service.rows import RowSource


def test_sms_rows_display_as_text():
    config = parse_config(
        {
            "name": "sms",
            "data": {"dataset": "sms_spam", "initial_labeled": 4, "test_size": 100},
            "labels": {"source": "human"},
        }
    )
    rows = RowSource.from_config(config)
    assert rows.display == "text"
    # Row 0 is the first line of SMSSpamCollection.
    assert rows.values_of([0])[0].startswith("Go until jurong point")
