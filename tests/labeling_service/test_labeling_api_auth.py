"""Labeling API: tokens, roles, the admin view, and the page's own files and headers."""

from __future__ import annotations

import re
from importlib import resources

import pytest


@pytest.mark.parametrize("path", ["/api/next", "/api/progress", "/api/my-answers", "/api/session", "/api/admin/quality"])
def test_missing_token_is_401(sqlite_run, path: str) -> None:
    response = sqlite_run.client.get(path)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(sqlite_run) -> None:
    response = sqlite_run.client.get("/api/next", headers={"Authorization": "Bearer not-a-real-token"})

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "unauthenticated"
    assert "token" in body["message"]


@pytest.mark.parametrize("header", ["Token abc", "Bearer", "Bearer   ", "abc"])
def test_malformed_authorization_is_401(sqlite_run, header: str) -> None:
    response = sqlite_run.client.get("/api/next", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"


def test_post_without_token_stores_nothing(sqlite_run) -> None:
    response = sqlite_run.client.post("/api/answers", json={"item_id": 1, "label": "7", "submission_id": "s"})

    assert response.status_code == 401
    assert sqlite_run.annotations() == []


def test_deactivated_annotator_is_401(sqlite_run) -> None:
    sqlite_run.queue.set_active("alice", False)

    response = sqlite_run.client.get("/api/next", headers=sqlite_run.auth("alice"))

    assert response.status_code == 401
    assert "deactivated" in response.json()["message"]


def test_session_lists_classes_and_keys(sqlite_run) -> None:
    response = sqlite_run.client.get("/api/session", headers=sqlite_run.auth("alice"))

    assert response.status_code == 200
    body = response.json()
    assert body["annotator_id"] == "alice"
    assert body["role"] == "annotator"
    assert body["display"] == "image"
    assert body["classes"] == [{"label": str(digit), "key": str(digit)} for digit in range(10)]
    assert body["skip_keys"] == ["s", "Escape"]


def test_quality_needs_admin(sqlite_run) -> None:
    response = sqlite_run.client.get("/api/admin/quality", headers=sqlite_run.auth("alice"))

    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "forbidden"
    assert "--admin" in body["message"]


def test_quality_for_admin(sqlite_run) -> None:
    task = sqlite_run.next_item("alice")
    sqlite_run.client.post(
        "/api/answers",
        json={"item_id": task["item_id"], "label": "7", "submission_id": "a-1"},
        headers=sqlite_run.auth("alice"),
    )

    response = sqlite_run.client.get("/api/admin/quality", headers=sqlite_run.auth("admin"))

    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    assert "alice" in response.text


def test_healthz_needs_no_token(sqlite_run) -> None:
    response = sqlite_run.client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_page_served_with_security_headers(sqlite_run) -> None:
    response = sqlite_run.client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/static/app.js"' in response.text


@pytest.mark.parametrize("name", ["app.js", "style.css"])
def test_static_file_served(sqlite_run, name: str) -> None:
    response = sqlite_run.client.get(f"/static/{name}")

    assert response.status_code == 200
    assert response.headers["content-security-policy"]


def test_static_files_load_nothing_external() -> None:
    static = resources.files("al_ray.labeling.service") / "static"
    for name in ("index.html", "app.js", "style.css"):
        text = (static / name).read_text(encoding="utf-8")
        assert re.search(r"https?://", text) is None, name
        assert "@import" not in text, name


def test_token_never_in_page_url(sqlite_run) -> None:
    script = sqlite_run.client.get("/static/app.js").text

    assert "sessionStorage" in script
    assert "localStorage" not in script
    assert "?token" not in script
