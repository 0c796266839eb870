"""Labeling API: malformed and oversized requests, in-process and through a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from al_ray.labeling.service.server import BackgroundServer


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "7", "submission_id": "s"}, "item_id"),
        ({"item_id": 1, "submission_id": "s"}, "label"),
        ({"item_id": 1, "label": "7"}, "submission_id"),
        ({"item_id": "one", "label": "7", "submission_id": "s"}, "item_id"),
        # Strict types: no bool, numeric string or float taken for an integer, no number for a string.
        ({"item_id": True, "label": "7", "submission_id": "s"}, "item_id"),
        ({"item_id": "1", "label": "7", "submission_id": "s"}, "item_id"),
        ({"item_id": 1.0, "label": "7", "submission_id": "s"}, "item_id"),
        ({"item_id": 1, "label": 7, "submission_id": "s"}, "label"),
        ({"item_id": 1, "label": "7", "submission_id": 5}, "submission_id"),
        ({"item_id": 0, "label": "7", "submission_id": "s"}, "item_id"),
        ({"item_id": 1, "label": "", "submission_id": "s"}, "label"),
        ({"item_id": 1, "label": "7", "submission_id": "x" * 129}, "submission_id"),
        ({"item_id": 1, "label": "7", "submission_id": "s", "annotator": "bob"}, "annotator"),
    ],
)
def test_invalid_answer_body_is_422(sqlite_run, body: dict, field: str) -> None:
    response = sqlite_run.client.post("/api/answers", json=body, headers=sqlite_run.auth("alice"))

    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "invalid_request"
    assert field in payload["message"]
    assert sqlite_run.annotations() == []


def test_answer_body_not_json_is_422(sqlite_run) -> None:
    headers = {**sqlite_run.auth("alice"), "Content-Type": "application/json"}

    response = sqlite_run.client.post("/api/answers", content=b"{not json", headers=headers)

    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "invalid_request"
    # The character offset of the parse error is not shown as a field name.
    assert payload["message"].startswith("invalid request: the body is not valid JSON")
    assert "0:" not in payload["message"]
    assert "Content-Type: application/json" in payload["message"]


@pytest.mark.parametrize(
    ("content", "headers", "expected"),
    [
        (b"[1, 2]", {"Content-Type": "application/json"}, "the body is not a JSON object"),
        (b"", {"Content-Type": "application/json"}, "the body is empty"),
        (b'{"item_id": 1}', {}, "the body is not a JSON object"),
    ],
)
def test_answer_body_shape_explained(sqlite_run, content: bytes, headers: dict, expected: str) -> None:
    response = sqlite_run.client.post("/api/answers", content=content, headers={**sqlite_run.auth("alice"), **headers})

    assert response.status_code == 422
    assert expected in response.json()["message"]


def test_rejected_value_quoted(sqlite_run) -> None:
    body = {"item_id": True, "label": "7", "submission_id": "s"}

    response = sqlite_run.client.post("/api/answers", json=body, headers=sqlite_run.auth("alice"))

    assert response.json()["message"] == "invalid request: item_id: Input should be a valid integer, got true"


def test_skip_body_missing_item_is_422(sqlite_run) -> None:
    response = sqlite_run.client.post("/api/skip", json={}, headers=sqlite_run.auth("alice"))

    assert response.status_code == 422
    assert "item_id" in response.json()["message"]


def test_oversized_body_is_413(sqlite_run) -> None:
    task = sqlite_run.next_item("alice")
    body = {"item_id": task["item_id"], "label": "7", "submission_id": "s", "padding": "x" * 20_000}

    response = sqlite_run.client.post("/api/answers", json=body, headers=sqlite_run.auth("alice"))

    assert response.status_code == 413
    payload = response.json()
    assert payload["error"] == "payload_too_large"
    assert "16384" in payload["message"]
    assert sqlite_run.annotations() == []


def test_oversized_body_checked_before_token(sqlite_run) -> None:
    response = sqlite_run.client.post("/api/answers", content=b"x" * 20_000)

    assert response.status_code == 413


def test_unknown_endpoint_is_json_404(sqlite_run) -> None:
    response = sqlite_run.client.get("/api/nothing-here", headers=sqlite_run.auth("alice"))

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "/api/nothing-here" in response.json()["message"]


def test_wrong_method_is_json_405(sqlite_run) -> None:
    response = sqlite_run.client.get("/api/answers", headers=sqlite_run.auth("alice"))

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


# Through a real server: the body limit must hold for bytes on the wire, not only for TestClient.


@pytest.fixture
def live_server(sqlite_run):
    with BackgroundServer(sqlite_run.client.app) as server:
        yield server


def raw_request(server: BackgroundServer, request: bytes) -> tuple[int, dict]:
    """Send raw HTTP/1.1 bytes and return the status and the JSON body of the response."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_live_submit_and_replay(sqlite_run, live_server) -> None:
    with httpx.Client(base_url=live_server.url, headers=sqlite_run.auth("alice")) as client:
        task = client.get("/api/next").json()["task"]
        body = {"item_id": task["item_id"], "label": "7", "submission_id": "live-1"}
        first = client.post("/api/answers", json=body)
        replay = client.post("/api/answers", json=body)

    assert first.status_code == 201
    assert replay.status_code == 200
    assert replay.json()["stored"] is False
    assert len(sqlite_run.annotations()) == 1


def test_live_declared_oversized_body_is_413(sqlite_run, live_server) -> None:
    request = (
        b"POST /api/answers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\nConnection: close\r\n\r\n{"
    )

    status, body = raw_request(live_server, request)

    assert status == 413
    assert body["error"] == "payload_too_large"


def test_live_chunked_oversized_body_is_413(sqlite_run, live_server) -> None:
    token = sqlite_run.tokens["alice"].encode()
    chunk = b"x" * 8000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
    request = (
        b"POST /api/answers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + chunks + b"0\r\n\r\n"
    )

    status, body = raw_request(live_server, request)

    assert status == 413
    assert body["error"] == "payload_too_large"
    assert sqlite_run.annotations() == []


def test_live_chunked_small_body_is_parsed(sqlite_run, live_server) -> None:
    with httpx.Client(base_url=live_server.url, headers=sqlite_run.auth("alice")) as client:
        task = client.get("/api/next").json()["task"]
    payload = json.dumps({"item_id": task["item_id"], "label": "7", "submission_id": "chunked-1"}).encode()
    token = sqlite_run.tokens["alice"].encode()
    request = (
        b"POST /api/answers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
    )

    status, body = raw_request(live_server, request)

    assert status == 201
    assert body["stored"] is True
