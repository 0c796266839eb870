"""The router client's errors when no router responds."""

from __future__ import annotations

import pickle
import socket

import pytest

from al_ray.serving.client import RouterClient
from al_ray.serving.errors import RouterHTTPError, ServingError


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_client_unreachable():
    port = _closed_port()
    client = RouterClient(f"http://127.0.0.1:{port}/", timeout_s=2)
    assert client.base_url == f"http://127.0.0.1:{port}"
    with pytest.raises(ServingError, match=r"cannot reach the router at http://127.0.0.1:\d+/stats: .*refused"):
        client.stats()


def test_client_wait_ready_times_out():
    client = RouterClient(f"http://127.0.0.1:{_closed_port()}", timeout_s=1)
    with pytest.raises(ServingError, match=r"did not respond within 0.3 s"):
        client.wait_ready(timeout_s=0.3)


def test_router_http_error_pickles():
    error = pickle.loads(pickle.dumps(RouterHTTPError("POST /predict failed", status=422, error="bad rows")))
    assert (str(error), error.status, error.error) == ("POST /predict failed", 422, "bad rows")
