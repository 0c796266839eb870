"""Gold rows: sampled from labeled rows with the seed, mixed in at gold_rate, kept out of training."""

from __future__ import annotations

import sqlalchemy as sa

from al_ray.labeling.schema import queue_items_table
from al_ray.labeling.source import HumanLabelSource
from al_ray.labels import Answer

TRUTH = {row_id: ("cat", "dog", "fox")[row_id % 3] for row_id in range(200)}


def label_round_zero(store, row_ids: list[int]) -> None:
    store.post_tasks(0, row_ids)
    store.add_answers([Answer(row_id, TRUTH[row_id], "oracle", 1.0) for row_id in row_ids])


def gold_items(store) -> dict[int, str]:
    with store.read_transaction("read test gold") as connection:
        rows = connection.execute(
            sa.select(queue_items_table.c.row_id, queue_items_table.c.gold_label).where(
                queue_items_table.c.kind == "gold"
            )
        ).all()
    return dict(rows)


def test_gold_sampled_from_labeled_rows(make_queue, post, store) -> None:
    label_round_zero(store, list(range(6)))
    queue = make_queue(gold_rate=0.5)
    queue.enqueue(post(1, [11, 12, 13, 14]))

    gold = gold_items(store)
    # An annotator who labels all 4 tasks at rate 0.5 sees 4 * 0.5 / 0.5 = 4 gold rows.
    assert len(gold) == 4
    assert set(gold) <= set(range(6))
    assert gold == {row_id: TRUTH[row_id] for row_id in gold}
    assert queue.enqueue(store.tasks(round_index=1)) == 0
    assert gold_items(store) == gold


def test_gold_sample_follows_seed(make_queue, post, store) -> None:
    label_round_zero(store, list(range(40)))
    tasks = post(1, [100, 101, 102])
    make_queue(gold_rate=0.5, seed=1).enqueue(tasks)
    first = sorted(gold_items(store))
    with store.write_transaction("drop test items") as connection:
        connection.execute(sa.delete(queue_items_table))
    make_queue(gold_rate=0.5, seed=1).enqueue(tasks)
    assert sorted(gold_items(store)) == first
    with store.write_transaction("drop test items") as connection:
        connection.execute(sa.delete(queue_items_table))
    make_queue(gold_rate=0.5, seed=2).enqueue(tasks)
    assert sorted(gold_items(store)) != first


def test_no_gold_without_labels(make_queue, post, store) -> None:
    queue = make_queue(gold_rate=0.3)
    queue.add_annotator("ann")
    queue.enqueue(post(0, [1, 2]))
    assert gold_items(store) == {}
    assert queue.next_task("ann").kind == "task"


def test_gold_mixed_at_rate(make_queue, post, store) -> None:
    label_round_zero(store, list(range(100)))
    queue = make_queue(gold_rate=0.25)
    queue.add_annotator("ann")
    queue.enqueue(post(1, list(range(100, 160))))

    kinds = []
    while (leased := queue.next_task("ann")) is not None:
        kinds.append(leased.kind)
        label = TRUTH[leased.row_id]
        queue.submit("ann", leased.item_id, label, f"s-{leased.item_id}")
    assert kinds.count("task") == 60
    share = kinds.count("gold") / len(kinds)
    assert 0.15 <= share <= 0.35


def test_gold_answers_never_reach_training(make_queue, post, store, clock) -> None:
    label_round_zero(store, list(range(30)))
    queue = make_queue(gold_rate=0.5)
    source = HumanLabelSource(queue, clock=clock, sleep=clock.advance)
    queue.add_annotator("ann")
    source.request(post(1, [100, 101, 102, 103]))

    gold_rows = set(gold_items(store))
    answered_gold = []
    while (leased := queue.next_task("ann")) is not None:
        if leased.kind == "gold":
            answered_gold.append(leased.row_id)
        # A wrong label on gold rows: it must not change their training label.
        queue.submit("ann", leased.item_id, "fox" if leased.kind == "gold" else "cat", f"s-{leased.item_id}")
    assert answered_gold and set(answered_gold) <= gold_rows

    collected = source.collect(timeout_s=0)
    assert sorted(answer.row_id for answer in collected) == [100, 101, 102, 103]
    store.add_answers(collected)
    assert store.conflicted_row_ids() == []
    labels = store.labels()
    assert all(labels[row_id] == TRUTH[row_id] for row_id in range(30))
    assert {answer.annotator for answer in store.answers()} == {"oracle", "consensus:majority"}


def test_quality_gold_accuracy(make_queue, post, store) -> None:
    label_round_zero(store, list(range(30)))
    queue = make_queue(gold_rate=0.5)
    queue.add_annotator("ann")
    queue.enqueue(post(1, [100, 101, 102, 103]))

    gold_seen = []
    while (leased := queue.next_task("ann")) is not None:
        if leased.kind == "gold":
            gold_seen.append(leased.row_id)
        # "cat" is right for the gold rows whose row_id % 3 == 0.
        queue.submit("ann", leased.item_id, "cat", f"s-{leased.item_id}")

    correct = sum(1 for row_id in gold_seen if TRUTH[row_id] == "cat")
    summary = queue.quality()
    ann = summary["annotators"][0]
    assert (ann["gold_answers"], ann["gold_correct"]) == (len(gold_seen), correct)
    assert ann["gold_accuracy"] == correct / len(gold_seen)
    assert summary["gold_accuracy"] == correct / len(gold_seen)
    assert summary["answers"] == {"task": 4, "gold": len(gold_seen)}
