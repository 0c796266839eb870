"""Labeling API on a real label store (SQLite, and PostgreSQL when its test server is set): tasks, answers, skips."""

from __future__ import annotations

from labeling_service_support import TASK_ROW_IDS, open_labeling_run

from al_ray.labels import Answer, LabelStore

# MNIST digits of the rows in TASK_ROW_IDS, read from the test split's label file.
DIGITS = {0: "7", 1: "2", 2: "1", 3: "0", 4: "4", 5: "1"}


def answer(run, annotator: str, item_id: int, label: str, submission_id: str):
    return run.client.post(
        "/api/answers",
        json={"item_id": item_id, "label": label, "submission_id": submission_id},
        headers=run.auth(annotator),
    )


def test_next_returns_leased_row_without_gold_flag(labeling_run) -> None:
    response = labeling_run.client.get("/api/next", headers=labeling_run.auth("alice"))

    assert response.status_code == 200
    task = response.json()["task"]
    assert set(task) == {"item_id", "round_index", "expires_at", "row"}
    assert task["round_index"] == 1
    assert task["expires_at"] == labeling_run.clock.now + 300.0
    row = task["row"]
    assert set(row) == {"display", "height", "width", "channels", "pixels"}
    assert (row["display"], row["height"], row["width"], row["channels"]) == ("image", 28, 28, 1)
    assert len(row["pixels"]) == 784
    # Tasks come best-first, so the first is the first row posted.
    assert labeling_run.row_of(task["item_id"]) == TASK_ROW_IDS[0]


def test_next_repeats_held_lease(labeling_run) -> None:
    first = labeling_run.next_item("alice")
    second = labeling_run.next_item("alice")

    assert second["item_id"] == first["item_id"]


def test_next_gives_other_annotator_other_item(labeling_run) -> None:
    alice = labeling_run.next_item("alice")
    bob = labeling_run.next_item("bob")

    assert bob["item_id"] != alice["item_id"]


def test_submit_stores_answer_once(labeling_run) -> None:
    task = labeling_run.next_item("alice")

    first = answer(labeling_run, "alice", task["item_id"], "7", "sub-1")
    replay = answer(labeling_run, "alice", task["item_id"], "7", "sub-1")

    assert first.status_code == 201
    assert first.json() == {"item_id": task["item_id"], "label": "7", "stored": True}
    assert replay.status_code == 200
    assert replay.json() == {"item_id": task["item_id"], "label": "7", "stored": False}
    stored = labeling_run.annotations()
    assert [(row["annotator_id"], row["label"], row["submission_id"]) for row in stored] == [("alice", "7", "sub-1")]


def test_submission_id_reused_for_other_answer(labeling_run) -> None:
    first = labeling_run.next_item("alice")
    answer(labeling_run, "alice", first["item_id"], "7", "sub-1")
    second = labeling_run.next_item("alice")

    response = answer(labeling_run, "alice", second["item_id"], "2", "sub-1")

    assert response.status_code == 409
    assert response.json()["error"] == "answer_conflict"
    assert len(labeling_run.annotations()) == 1


def test_label_outside_classes_rejected(labeling_run) -> None:
    task = labeling_run.next_item("alice")

    response = answer(labeling_run, "alice", task["item_id"], "cat", "sub-1")

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_label"
    assert "cat" in body["message"]
    assert labeling_run.annotations() == []


def test_unknown_item_rejected(labeling_run) -> None:
    labeling_run.next_item("alice")

    response = answer(labeling_run, "alice", 999_999, "7", "sub-1")

    assert response.status_code == 404
    assert response.json()["error"] == "unknown_task"
    assert labeling_run.annotations() == []


def test_other_annotators_task_rejected(labeling_run) -> None:
    alice_task = labeling_run.next_item("alice")
    labeling_run.next_item("bob")

    response = answer(labeling_run, "bob", alice_task["item_id"], "3", "bob-1")

    assert response.status_code == 403
    assert response.json()["error"] == "task_not_yours"
    assert labeling_run.annotations() == []
    # Alice's own answer to the item is still accepted afterwards.
    assert answer(labeling_run, "alice", alice_task["item_id"], "7", "alice-1").status_code == 201


def test_other_annotator_cannot_overwrite_answer(labeling_run) -> None:
    alice_task = labeling_run.next_item("alice")
    answer(labeling_run, "alice", alice_task["item_id"], "7", "alice-1")
    labeling_run.next_item("bob")

    response = answer(labeling_run, "bob", alice_task["item_id"], "3", "alice-1")

    assert response.status_code == 403
    stored = labeling_run.annotations()
    assert [(row["annotator_id"], row["label"]) for row in stored] == [("alice", "7")]


def test_skip_moves_to_next_item(labeling_run) -> None:
    first = labeling_run.next_item("alice")

    response = labeling_run.client.post("/api/skip", json={"item_id": first["item_id"]}, headers=labeling_run.auth("alice"))

    assert response.status_code == 200
    assert response.json() == {"item_id": first["item_id"], "skipped": True}
    second = labeling_run.next_item("alice")
    assert second["item_id"] != first["item_id"]
    states = {(row["item_id"], row["annotator_id"]): row["state"] for row in labeling_run.leases()}
    assert states[(first["item_id"], "alice")] == "skipped"


def test_skip_of_unleased_item_rejected(labeling_run) -> None:
    alice_task = labeling_run.next_item("alice")

    response = labeling_run.client.post("/api/skip", json={"item_id": alice_task["item_id"]}, headers=labeling_run.auth("bob"))

    assert response.status_code == 403
    assert response.json()["error"] == "task_not_yours"


def test_progress_counts(labeling_run) -> None:
    first = labeling_run.next_item("alice")
    answer(labeling_run, "alice", first["item_id"], "7", "a-1")
    second = labeling_run.next_item("alice")
    labeling_run.client.post("/api/skip", json={"item_id": second["item_id"]}, headers=labeling_run.auth("alice"))

    response = labeling_run.client.get("/api/progress", headers=labeling_run.auth("alice"))

    assert response.status_code == 200
    # 6 tasks: 1 answered, 1 skipped, 4 left for alice.
    assert response.json() == {"answered": 1, "skipped": 1, "remaining": 4}


def test_my_answers_lists_only_own(labeling_run) -> None:
    alice_task = labeling_run.next_item("alice")
    bob_task = labeling_run.next_item("bob")
    answer(labeling_run, "alice", alice_task["item_id"], "7", "a-1")
    answer(labeling_run, "bob", bob_task["item_id"], "2", "b-1")

    response = labeling_run.client.get("/api/my-answers", headers=labeling_run.auth("alice"))

    assert response.status_code == 200
    answers = response.json()["answers"]
    assert [(entry["item_id"], entry["label"]) for entry in answers] == [(alice_task["item_id"], "7")]


def test_next_returns_null_when_queue_empty(labeling_run) -> None:
    for index in range(len(TASK_ROW_IDS)):
        task = labeling_run.next_item("alice")
        answer(labeling_run, "alice", task["item_id"], "1", f"a-{index}")

    response = labeling_run.client.get("/api/next", headers=labeling_run.auth("alice"))

    assert response.status_code == 200
    assert response.json() == {"task": None}


def test_expired_lease_goes_to_other_annotator(labeling_run) -> None:
    alice_task = labeling_run.next_item("alice")
    labeling_run.clock.advance(301.0)

    bob_task = labeling_run.next_item("bob")
    answer(labeling_run, "bob", bob_task["item_id"], "7", "b-1")
    late = answer(labeling_run, "alice", alice_task["item_id"], "7", "a-1")

    assert bob_task["item_id"] == alice_task["item_id"]
    assert late.status_code == 409
    assert late.json()["error"] == "lease_expired"
    assert [(row["annotator_id"], row["label"]) for row in labeling_run.annotations()] == [("bob", "7")]


def test_expired_lease_still_accepts_untaken_answer(labeling_run) -> None:
    task = labeling_run.next_item("alice")
    labeling_run.clock.advance(301.0)

    response = answer(labeling_run, "alice", task["item_id"], "7", "a-1")

    assert response.status_code == 201


def test_two_answers_per_task_both_kept(label_store_url, mnist) -> None:
    for run in open_labeling_run(label_store_url, mnist, row_ids=[0, 1], answers_per_task=2):
        alice_task = run.next_item("alice")
        bob_task = run.next_item("bob")
        answer(run, "alice", alice_task["item_id"], "7", "a-1")
        answer(run, "bob", bob_task["item_id"], "1", "b-1")

        stored = sorted((row["item_id"], row["annotator_id"], row["label"]) for row in run.annotations())

        # With k = 2 both annotators get the best-first item, and both answers are kept.
        assert bob_task["item_id"] == alice_task["item_id"]
        assert stored == [(alice_task["item_id"], "alice", "7"), (alice_task["item_id"], "bob", "1")]


def test_gold_rows_look_like_tasks(tmp_path, mnist) -> None:
    store_url = f"sqlite:///{tmp_path / 'labels.db'}"
    with LabelStore(store_url) as store:
        # Round 0's labels are where gold rows come from.
        store.begin_round(0)
        labeled = list(range(100, 120))
        store.post_tasks(0, labeled)
        store.add_answers([Answer(row_id, label, "oracle", 1.0) for row_id, label in zip(labeled, mnist.label_names(labeled))])
        store.complete_round(0, {"accuracy": 0.5})
    for run in open_labeling_run(store_url, mnist, gold_rate=0.5):
        payload_keys = set()
        kinds = set()
        for index in range(len(TASK_ROW_IDS) * 2):
            response = run.client.get("/api/next", headers=run.auth("alice"))
            task = response.json()["task"]
            if task is None:
                break
            payload_keys.add((tuple(sorted(task)), tuple(sorted(task["row"]))))
            kinds.add(run.kind_of(task["item_id"]))
            answer(run, "alice", task["item_id"], "1", f"g-{index}")
        answers = run.client.get("/api/my-answers", headers=run.auth("alice")).json()["answers"]

        assert kinds == {"task", "gold"}
        assert len(payload_keys) == 1
        assert all("kind" not in entry and "gold_label" not in entry for entry in answers)
