"""Hypothesis: the label store against a plain-Python model of its answers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from al_ray.labels import AddAnswersResult, Answer, LabelStore
from al_ray.labels._schema import answers_table, tasks_table

ROW_IDS = [0, 1, 2, 3]

answer_strategy = st.builds(
    Answer,
    row_id=st.sampled_from(ROW_IDS),
    label=st.sampled_from(["x", "y", "z"]),
    annotator=st.sampled_from(["ann", "bob"]),
    answered_at=st.floats(0, 1e9),
)
batches_strategy = st.lists(st.lists(answer_strategy, max_size=6), min_size=1, max_size=5)


@pytest.fixture
def store(label_store_url: str) -> LabelStore:
    with LabelStore(label_store_url) as opened:
        yield opened


# The store outlives the examples and is emptied at the start of each one.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches_strategy)
def test_answers_match_model(store: LabelStore, batches: list[list[Answer]]) -> None:
    # row_id -> set of stored (annotator, label), the model of the answers table.
    model: dict[int, set[tuple[str, str]]] = {}
    with store.write_transaction("empty the store") as connection:
        connection.execute(sa.delete(answers_table))
        connection.execute(sa.delete(tasks_table))
    store.post_tasks(0, ROW_IDS)
    for batch in batches:
        stored = 0
        touched: set[int] = set()
        for answer in batch:
            key = (answer.annotator, answer.label)
            if key not in model.setdefault(answer.row_id, set()):
                model[answer.row_id].add(key)
                stored += 1
                touched.add(answer.row_id)
        labels_of = {row_id: {label for _, label in keys} for row_id, keys in model.items()}
        expected = AddAnswersResult(
            stored=stored,
            duplicates=len(batch) - stored,
            conflicts=sorted(row_id for row_id in touched if len(labels_of[row_id]) > 1),
        )

        assert store.add_answers(batch) == expected
        assert store.labels() == {
            row_id: next(iter(labels))
            for row_id, labels in sorted(labels_of.items())
            if len(labels) == 1
        }
        assert store.conflicted_row_ids() == sorted(
            row_id for row_id, labels in labels_of.items() if len(labels) > 1
        )
        assert store.count_answered() == sum(1 for keys in model.values() if keys)
        assert len(store.answers()) == sum(len(keys) for keys in model.values())
