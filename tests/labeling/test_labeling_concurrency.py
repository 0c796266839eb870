"""Ten annotator threads leasing, answering, replaying and skipping at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from al_ray.labeling._leasing import answer_count, holder_count
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.errors import AnswerConflictError
from al_ray.labeling.queue import LabelQueue
from al_ray.labeling.schema import annotations_table, queue_items_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

N_ANNOTATORS = 10
N_ROWS = 30
ANSWERS_PER_TASK = 2
CLASSES = ("cat", "dog", "fox")


def truth(row_id: int) -> str:
    return CLASSES[row_id % 3]


def max_taken(store) -> int:
    """Return the largest answers-plus-holders count of any item, read in one statement."""
    items = queue_items_table
    # Leases never expire in this test, so every active lease holds its item.
    taken = answer_count(items.c.item_id) + holder_count(items.c.item_id, 0.0)
    with store.read_transaction("read test counts") as connection:
        return connection.execute(sa.select(sa.func.max(taken)).select_from(items)).scalar_one() or 0


def test_ten_annotators_at_once(store) -> None:
    queue = LabelQueue(store, CLASSES, LabelingConfig(answers_per_task=ANSWERS_PER_TASK), seed=5)
    names = [f"annotator-{index}" for index in range(N_ANNOTATORS)]
    for name in names:
        queue.add_annotator(name)
    store.post_tasks(0, list(range(N_ROWS)))
    queue.enqueue(store.tasks())

    errors: list[BaseException] = []
    replays = Counter()
    conflicts = Counter()
    skipped: dict[str, set[int]] = {name: set() for name in names}
    done = threading.Event()
    largest = [0]

    def annotate(index: int, name: str) -> None:
        try:
            step = 0
            while (leased := queue.next_task(name)) is not None:
                step += 1
                # Annotator 0 skips every third item it is given: those go to others.
                if index == 0 and step % 3 == 0:
                    queue.skip(name, leased.item_id)
                    skipped[name].add(leased.item_id)
                    continue
                submission = f"{name}-{leased.item_id}"
                assert queue.submit(name, leased.item_id, truth(leased.row_id), submission).stored
                if step % 4 == 0:
                    replays[name] += not queue.submit(name, leased.item_id, truth(leased.row_id), submission).stored
                if step % 5 == 0:
                    try:
                        queue.submit(name, leased.item_id, "fox" if truth(leased.row_id) != "fox" else "cat", "other")
                    except AnswerConflictError:
                        conflicts[name] += 1
        except BaseException as error:  # noqa: BLE001 - the test reports it below
            errors.append(error)

    def watch() -> None:
        try:
            while not done.is_set():
                largest[0] = max(largest[0], max_taken(store))
                queue.resolve()
        except BaseException as error:  # noqa: BLE001 - the test reports it below
            errors.append(error)

    watcher = threading.Thread(target=watch)
    threads = [threading.Thread(target=annotate, args=(index, name)) for index, name in enumerate(names)]
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()

    assert errors == []
    queue.resolve()
    # Once an item has its answers the count stays at k, so the watcher saw k at least once.
    assert largest[0] == ANSWERS_PER_TASK
    with store.read_transaction("read test answers") as connection:
        rows = connection.execute(
            sa.select(annotations_table.c.item_id, annotations_table.c.annotator_id, annotations_table.c.label)
        ).all()
    per_item = Counter(item_id for item_id, _, _ in rows)
    assert sorted(per_item) == list(range(1, N_ROWS + 1))
    assert set(per_item.values()) == {ANSWERS_PER_TASK}
    assert len({(item_id, annotator) for item_id, annotator, _ in rows}) == len(rows)
    assert all(
        item_id not in skipped[annotator] for item_id, annotator, _ in rows
    )
    # Every answer was the true label, so no conflicting answer was stored.
    assert queue.pending_items() == []
    assert {answer.row_id: answer.label for answer in queue.resolved_answers(range(N_ROWS))} == {
        row_id: truth(row_id) for row_id in range(N_ROWS)
    }
    assert sum(replays.values()) > 0
    assert sum(conflicts.values()) > 0
