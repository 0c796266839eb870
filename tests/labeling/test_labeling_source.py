"""The human label source: idempotent requests, polling collect, answers once, recovery, metrics."""

from __future__ import annotations

import pytest

from al_ray.errors import ConfigError
from al_ray.labeling.source import HumanLabelSource
from al_ray.labels import Answer, LabelSource


class Sleeper:
    """A fake sleep that advances the fake clock and records each wait."""

    def __init__(self, clock, on_sleep=None) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self.on_sleep = on_sleep

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        if self.on_sleep is not None:
            self.on_sleep(len(self.waits))


def answer(queue, annotator: str, label: str) -> int:
    leased = queue.next_task(annotator)
    queue.submit(annotator, leased.item_id, label, f"{annotator}-{leased.item_id}")
    return leased.row_id


def test_request_is_idempotent(make_queue, post, clock) -> None:
    queue = make_queue()
    source = HumanLabelSource(queue, clock=clock, sleep=Sleeper(clock))
    tasks = post(0, [1, 2])
    source.request(tasks)
    source.request(tasks)
    assert source.n_pending == 2
    assert [item["row_id"] for item in queue.pending_items()] == [1, 2]
    assert source.name == "human"


def test_collect_times_out_without_busy_wait(make_queue, post, clock) -> None:
    queue = make_queue()
    sleeper = Sleeper(clock)
    source = HumanLabelSource(queue, poll_interval_s=0.5, clock=clock, sleep=sleeper)
    source.request(post(0, [1]))

    assert source.collect(timeout_s=2.2) == []
    assert sleeper.waits == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.2])
    assert source.collect(timeout_s=0) == []
    assert len(sleeper.waits) == 5


def test_collect_waits_for_first_answer(make_queue, post, clock) -> None:
    queue = make_queue()
    queue.add_annotator("ann")

    def answer_on_third_wait(n_waits: int) -> None:
        if n_waits == 3:
            answer(queue, "ann", "dog")

    sleeper = Sleeper(clock, on_sleep=answer_on_third_wait)
    source = HumanLabelSource(queue, poll_interval_s=0.5, clock=clock, sleep=sleeper)
    source.request(post(0, [1, 2]))

    collected = source.collect(timeout_s=60)
    assert collected == [Answer(1, "dog", "consensus:majority", 1001.5)]
    assert len(sleeper.waits) == 3
    # Row 1 is returned once; row 2 is still pending.
    assert source.collect(timeout_s=0) == []
    assert source.n_pending == 1


def test_new_source_returns_resolved_answers(make_queue, post, clock, store) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    first = HumanLabelSource(queue, clock=clock, sleep=Sleeper(clock))
    tasks = post(0, [1, 2])
    first.request(tasks)
    answer(queue, "ann", "cat")
    answer(queue, "ann", "fox")
    assert len(first.collect(timeout_s=0)) == 2

    # A run killed before storing those answers requests the pending tasks
    # again after the resume, and gets the answers back.
    second = HumanLabelSource(make_queue(), clock=clock, sleep=Sleeper(clock))
    second.request(store.tasks(status="pending"))
    assert second.collect(timeout_s=0) == [
        Answer(1, "cat", "consensus:majority", 1000.0),
        Answer(2, "fox", "consensus:majority", 1000.0),
    ]


def test_metrics_agreement_and_counts(make_queue, post, clock) -> None:
    queue = make_queue(answers_per_task=2)
    queue.add_annotator("ann")
    queue.add_annotator("bob@example.org")
    source = HumanLabelSource(queue, clock=clock, sleep=Sleeper(clock))
    source.request(post(0, [1, 2, 3, 4]))
    # ann: cat cat dog dog; bob: cat dog dog dog. Cohen's kappa: p_o = 3/4,
    # p_e = 1/2 * 1/4 + 1/2 * 3/4 = 1/2, kappa = 1/2. Fleiss: p_o = 3/4,
    # pi_cat = 3/8, pi_dog = 5/8, p_e = 17/32, kappa = (24/32 - 17/32) / (15/32) = 7/15.
    for ann_label, bob_label in (("cat", "cat"), ("cat", "dog"), ("dog", "dog"), ("dog", "dog")):
        answer(queue, "ann", ann_label)
        answer(queue, "bob@example.org", bob_label)

    figures = source.metrics()
    assert figures == pytest.approx(
        {
            "labeling_task_answers": 8.0,
            "labeling_gold_answers": 0.0,
            "labeling_open_tasks": 4.0,
            "labeling_fleiss_kappa": 7 / 15,
            "labeling_mean_cohen_kappa": 0.5,
            "labeling_annotators": 2.0,
            "labeling_labels_per_annotator": 4.0,
            "labeling_answers.ann": 4.0,
            "labeling_answers.bob_example.org": 4.0,
        }
    )
    pairs = queue.quality()["pairs"]
    assert pairs == [{"annotators": ["ann", "bob@example.org"], "kappa": pytest.approx(0.5), "shared": 4}]


def test_oracle_reports_no_metrics() -> None:
    from al_ray.labels import SimulatedOracle

    assert SimulatedOracle({1: "a"}).metrics() == {}
    assert LabelSource.metrics is SimulatedOracle.metrics


def test_poll_interval_must_be_positive(make_queue) -> None:
    with pytest.raises(ConfigError, match="poll_interval_s must be > 0 seconds, got 0"):
        HumanLabelSource(make_queue(), poll_interval_s=0)
