"""The loop with the human label source: annotator threads answer through the queue from ground truth.

The threads open the run's label store in their own LabelStore, as the
labeling service does in its own process, and label every task they are
given with its true class.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from al_ray.config import RunConfig, load_config
from al_ray.labeling.queue import LabelQueue
from al_ray.labels import LabelStore
from al_ray.loop import ActiveLearningLoop
from al_ray.loop.runner import load_data

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Annotators(threading.Thread):
    """Annotators who answer every task with its true label, until stopped.

    With ``pause_after``, they stop after that many answers until round 0
    is completed, so that round trains on part of its tasks only.
    """

    def __init__(self, config: RunConfig, store_path: Path, names: list[str], pause_after: int | None = None):
        super().__init__(daemon=True)
        data = load_data(config)
        self.truth = dict(zip(data.row_ids.tolist(), data.label_names(data.row_ids)))
        self.classes = data.classes
        self.config = config
        self.store_path = store_path
        self.names = names
        self.pause_after = pause_after
        self.answered = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            # The loop creates the store, because a new run rejects an existing one.
            while not self.store_path.exists():
                if self.stop.wait(0.05):
                    return
            with LabelStore(self.store_path) as store:
                queue = LabelQueue.for_run(store, self.classes, self.config)
                for name in self.names:
                    queue.add_annotator(name)
                while not self.stop.is_set():
                    if not self.work(queue, store):
                        self.stop.wait(0.05)
        except BaseException as error:  # noqa: BLE001 - the test reports it
            self.error = error

    def work(self, queue: LabelQueue, store: LabelStore) -> bool:
        paused = (
            self.pause_after is not None
            and self.answered >= self.pause_after
            and store.round_status(0) != "completed"
        )
        if paused:
            return False
        progressed = False
        for name in self.names:
            leased = queue.next_task(name)
            if leased is None:
                continue
            queue.submit(name, leased.item_id, self.truth[leased.row_id], f"{name}-{leased.item_id}")
            self.answered += 1
            progressed = True
        return progressed


def run_with_annotators(config: RunConfig, output: Path, annotators: Annotators):
    annotators.start()
    try:
        result = ActiveLearningLoop(config, output_dir=output).run()
    finally:
        annotators.stop.set()
        annotators.join(timeout=30)
    assert annotators.error is None
    with LabelStore(output / "labels.db") as store:
        metrics = {row["round_index"]: row["metrics"] for row in store.round_records()}
        return result, metrics, store.labels(), store.answers(), store.tasks()


def test_rounds_train_on_human_labels(small_config, tmp_path) -> None:
    config = load_config(
        small_config(
            labels={"source": "human"},
            labeling={"answers_per_task": 2},
            loop={"rounds": 2, "batch_size": 10, "collect_timeout_s": 120},
        )
    )
    output = tmp_path / "run"
    annotators = Annotators(config, output / "labels.db", ["ann", "bob"])
    result, metrics, labels, answers, tasks = run_with_annotators(config, output, annotators)

    assert result.status == "completed"
    assert [metrics[index]["n_labeled"] for index in (0, 1, 2)] == [20.0, 30.0, 40.0]
    assert labels == {task.row_id: annotators.truth[task.row_id] for task in tasks}
    # aggregation "auto" switches to Dawid-Skene once both have 20 answers.
    assert {answer.annotator for answer in answers} <= {"consensus:majority", "consensus:dawid_skene"}
    # Two answers per task: 40 after round 0, 60 after round 1, 80 after round 2.
    assert [metrics[index]["labeling_task_answers"] for index in (0, 1, 2)] == [40.0, 60.0, 80.0]
    assert metrics[2]["labeling_annotators"] == 2.0
    assert metrics[2]["labeling_fleiss_kappa"] == 1.0
    assert metrics[2]["labeling_answers.ann"] == 40.0


def test_quota_trains_early_and_counts_late_answers(small_config, tmp_path, caplog) -> None:
    config = load_config(
        small_config(
            labels={"source": "human"},
            labeling={"quota": 0.5},
            loop={"rounds": 2, "batch_size": 10, "collect_timeout_s": 120},
        )
    )
    output = tmp_path / "run"
    annotators = Annotators(config, output / "labels.db", ["ann"], pause_after=10)
    with caplog.at_level(logging.WARNING, logger="al_ray.loop.runner"):
        result, metrics, labels, _, tasks = run_with_annotators(config, output, annotators)

    assert result.status == "completed"
    # Round 0 trained once 10 of its 20 tasks were answered.
    assert metrics[0]["n_labeled"] == 10.0
    assert "10 of 20 tasks are still unanswered when the round trains (labeling.quota 0.50" in caplog.text
    # The other 10 were answered late and stored in round 1, before its training.
    round_zero = [task.row_id for task in tasks if task.round_index == 0]
    assert len(round_zero) == 20
    assert all(labels[row_id] == annotators.truth[row_id] for row_id in round_zero)
    assert metrics[1]["n_labeled"] >= 20.0
    assert metrics[2]["n_labeled"] >= metrics[1]["n_labeled"]
