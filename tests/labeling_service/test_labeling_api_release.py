"""Labeling API: releasing a task without a skip, the quality view's annotator statuses, the favicon."""

from __future__ import annotations

from labeling_service_support import TASK_ROW_IDS

from al_ray.labeling.aggregation import Vote


def release(run, annotator: str, item_id: int):
    return run.client.post("/api/release", json={"item_id": item_id}, headers=run.auth(annotator))


def test_release_returns_task_to_queue_without_skip(labeling_run) -> None:
    held = labeling_run.next_item("alice")

    response = release(labeling_run, "alice", held["item_id"])

    assert response.status_code == 200
    assert response.json() == {"item_id": held["item_id"], "released": True}
    states = {(row["item_id"], row["annotator_id"]): row["state"] for row in labeling_run.leases()}
    assert states[(held["item_id"], "alice")] == "expired"
    # Bob gets the released task at once: it is the best-ranked one, and nobody holds it.
    assert labeling_run.next_item("bob")["item_id"] == held["item_id"]
    progress = labeling_run.client.get("/api/progress", headers=labeling_run.auth("alice")).json()
    assert progress["skipped"] == 0


def test_released_task_comes_back_after_the_others(labeling_run) -> None:
    held = labeling_run.next_item("alice")
    release(labeling_run, "alice", held["item_id"])

    # Alice gets the tasks she never saw first; the released one is not skipped, so it is still hers to take.
    progress = labeling_run.client.get("/api/progress", headers=labeling_run.auth("alice")).json()
    following = labeling_run.next_item("alice")

    assert progress == {"answered": 0, "skipped": 0, "remaining": len(TASK_ROW_IDS)}
    assert following["item_id"] != held["item_id"]


def test_release_twice_and_after_answer_changes_nothing(labeling_run) -> None:
    held = labeling_run.next_item("alice")
    assert release(labeling_run, "alice", held["item_id"]).json()["released"] is True
    again = release(labeling_run, "alice", held["item_id"])

    answered = labeling_run.next_item("alice")
    labeling_run.client.post(
        "/api/answers",
        json={"item_id": answered["item_id"], "label": "7", "submission_id": "s1"},
        headers=labeling_run.auth("alice"),
    )
    after_answer = release(labeling_run, "alice", answered["item_id"])

    assert (again.status_code, again.json()["released"]) == (200, False)
    assert (after_answer.status_code, after_answer.json()["released"]) == (200, False)
    assert [row["label"] for row in labeling_run.annotations()] == ["7"]


def test_release_of_other_annotators_task_is_403(labeling_run) -> None:
    held = labeling_run.next_item("alice")

    response = release(labeling_run, "bob", held["item_id"])

    assert response.status_code == 403
    assert response.json()["error"] == "task_not_yours"
    states = {(row["item_id"], row["annotator_id"]): row["state"] for row in labeling_run.leases()}
    assert states == {(held["item_id"], "alice"): "active"}


def test_release_of_unknown_task_is_404(sqlite_run) -> None:
    response = release(sqlite_run, "alice", 999)

    assert response.status_code == 404
    assert "GET /api/next" in response.json()["message"]


def test_release_needs_token_and_integer(sqlite_run) -> None:
    held = sqlite_run.next_item("alice")

    anonymous = sqlite_run.client.post("/api/release", json={"item_id": held["item_id"]})
    as_text = sqlite_run.client.post(
        "/api/release", json={"item_id": str(held["item_id"])}, headers=sqlite_run.auth("alice")
    )

    assert anonymous.status_code == 401
    assert as_text.status_code == 422
    assert [row["state"] for row in sqlite_run.leases()] == ["active"]


def test_answer_to_task_never_leased_names_the_endpoint(sqlite_run) -> None:
    held = sqlite_run.next_item("alice")

    response = sqlite_run.client.post(
        "/api/answers",
        json={"item_id": held["item_id"], "label": "7", "submission_id": "s"},
        headers=sqlite_run.auth("bob"),
    )

    assert response.status_code == 403
    message = response.json()["message"]
    assert "GET /api/next" in message
    assert "next_task" not in message


def test_deactivation_frees_the_held_task(sqlite_run) -> None:
    held = sqlite_run.next_item("alice")

    sqlite_run.queue.set_active("alice", False)

    assert sqlite_run.next_item("bob")["item_id"] == held["item_id"]
    assert "al-ray label annotators activate alice" in sqlite_run.client.get(
        "/api/next", headers=sqlite_run.auth("alice")
    ).json()["message"]


def test_quality_marks_imported_ids(sqlite_run) -> None:
    sqlite_run.queue.set_active("bob", False)
    sqlite_run.queue.import_votes([Vote(TASK_ROW_IDS[0], "labelstudio:9", "7")])

    response = sqlite_run.client.get("/api/admin/quality", headers=sqlite_run.auth("admin"))

    statuses = {row["annotator_id"]: (row["role"], row["status"]) for row in response.json()["annotators"]}
    assert statuses == {
        "admin": ("admin", "active"),
        "alice": ("annotator", "active"),
        "bob": ("annotator", "deactivated"),
        "labelstudio:9": (None, "imported"),
    }


def test_quality_without_answers_has_no_pairs(sqlite_run) -> None:
    body = sqlite_run.client.get("/api/admin/quality", headers=sqlite_run.auth("admin")).json()

    assert body["pairs"] == []
    assert body["fleiss_kappa"] is None


def test_favicon_served(sqlite_run) -> None:
    response = sqlite_run.client.get("/favicon.ico")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.text.startswith("<svg")
