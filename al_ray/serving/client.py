"""An HTTP client of the router, for the canary controller, the CLI and tests.

Uses only the standard library (``urllib``) and ignores proxy settings in the
environment, because the router is usually on the same machine or cluster.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from al_ray.serving.errors import RouterHTTPError, ServingError

__all__ = ["DEFAULT_TIMEOUT_S", "RouterClient"]

DEFAULT_TIMEOUT_S = 30.0

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class RouterClient:
    """Calls the router's HTTP API.

    Parameters
    ----------
    base_url
        The router's address with its route prefix, such as ``"http://127.0.0.1:8000"``.
    timeout_s
        Seconds to wait for each response.

    Raises
    ------
    RouterHTTPError
        From any method, when the router responds with an error status.
    ServingError
        From any method, when the router cannot be reached or times out.
    """

    def __init__(self, base_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"RouterClient({self.base_url!r})"

    def predict(
        self, rows: Sequence[Sequence[float]], *, key: str | None = None, row_ids: Sequence[int] | None = None
    ) -> dict[str, Any]:
        """Score ``rows`` and return the router's response.

        Returns
        -------
        dict
            ``predictions`` (class names), ``probabilities`` (one list per row),
            ``uncertainty``, ``version``, ``role`` and ``request_id``.
        """
        body: dict[str, Any] = {"rows": [[float(value) for value in row] for row in rows]}
        if key is not None:
            body["key"] = key
        if row_ids is not None:
            body["row_ids"] = [int(row_id) for row_id in row_ids]
        return self._request("POST", "/predict", body)

    def feedback(self, request_id: str, labels: Sequence[str]) -> dict[str, Any]:
        """Send the true class names of the rows of an earlier ``predict`` request."""
        return self._request("POST", "/feedback", {"request_id": request_id, "labels": list(labels)})

    def versions(self) -> dict[str, Any]:
        """Return the live versions, their roles and weights, and the router's pid."""
        return self._request("GET", "/versions")

    def stats(self) -> dict[str, Any]:
        """Return the current stats window."""
        return self._request("GET", "/stats")

    def metrics(self) -> str:
        """Return the Prometheus text of the router's metrics."""
        return self._send("GET", "/metrics", None).decode("utf-8")

    def set_weights(
        self, challenger: float, *, shadow: bool | None = None, sticky: bool | None = None
    ) -> dict[str, Any]:
        """Give the challenger ``challenger`` of the traffic; set shadow or sticky routing when given.

        In shadow mode the challenger also scores a copy of every request the
        champion serves. Returns the ``/versions`` view after the change,
        which starts a new stats window.
        """
        body: dict[str, Any] = {"challenger": challenger}
        if shadow is not None:
            body["shadow"] = shadow
        if sticky is not None:
            body["sticky"] = sticky
        return self._request("POST", "/admin/weights", body)

    def promote(self) -> dict[str, Any]:
        """Make the challenger the champion; the old champion stays as challenger at weight 0."""
        return self._request("POST", "/admin/promote", {})

    def rollback(self) -> dict[str, Any]:
        """Set the challenger's weight to 0 and stop shadowing."""
        return self._request("POST", "/admin/rollback", {})

    def wait_ready(self, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll ``GET /versions`` until the router responds, and return the response.

        Raises
        ------
        ServingError
            If the router does not respond within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.versions()
            except ServingError as error:
                if time.monotonic() >= deadline:
                    raise ServingError(
                        f"the router at {self.base_url} did not respond within {timeout_s:g} s: {error}"
                    ) from error
            time.sleep(0.2)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        raw = self._send(method, path, body)
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise ServingError(f"{method} {self.base_url}{path} returned a body that is not JSON: {raw[:200]!r}") from error

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> bytes:
        url = f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with _NO_PROXY.open(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                message = json.loads(raw)["error"]
            except (json.JSONDecodeError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace")[:500]
            raise RouterHTTPError(
                f"{method} {url} failed with HTTP {error.code}: {message}", status=error.code, error=message
            ) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            raise ServingError(
                f"cannot reach the router at {url}: {reason}; check that serving is deployed "
                "and that serving.host and serving.port match"
            ) from error
