"""The Ray dashboard address a job is submitted to, its token, and a bounded reachability probe.

Job submission talks HTTP to the Ray dashboard (default port 8265), not to
the GCS (``HOST:6379``) or the Ray Client server (``ray://HOST:10001``).

Token authentication (Ray 2.60): a cluster started with ``RAY_AUTH_MODE=token``
responds 401 to dashboard requests without an ``Authorization: Bearer TOKEN``
header, and 403 to a wrong token. Only ``/api/authentication_mode`` (and health
checks) respond without a token, and it names the mode. The token is read here from ``RAY_AUTH_TOKEN``, or from the
file that ``RAY_AUTH_TOKEN_PATH`` names, the variables Ray itself reads. It is
sent as a header and never printed, logged or shipped with the job.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from al_ray.errors import ClusterError, ConfigError

__all__ = [
    "ADDRESS_ENV_VAR",
    "TOKEN_ENV_VAR",
    "TOKEN_PATH_ENV_VAR",
    "Dashboard",
    "is_loopback_host",
    "probe_dashboard",
    "redact",
    "resolve_address",
]

logger = logging.getLogger(__name__)

ADDRESS_ENV_VAR = "RAY_ADDRESS"
TOKEN_ENV_VAR = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV_VAR = "RAY_AUTH_TOKEN_PATH"

_REDACTED = "<redacted>"


def resolve_address(flag: str | None, configured: str | None) -> str:
    """Return the dashboard address from ``--address``, else ``cluster.address``, else ``RAY_ADDRESS``.

    Raises
    ------
    ConfigError
        When none is set, or the address is not an ``http(s)://`` URL.
    """
    for source, value in (
        ("--address", flag),
        ("cluster.address", configured),
        (ADDRESS_ENV_VAR, os.environ.get(ADDRESS_ENV_VAR)),
    ):
        if value:
            return _checked_http(value.strip(), source)
    raise ConfigError(
        "no Ray cluster address; pass --address http://HOST:8265 (the Ray dashboard), "
        f"set cluster.address in the config, or export {ADDRESS_ENV_VAR}=http://HOST:8265"
    )


def _checked_http(address: str, source: str) -> str:
    parsed = urllib.parse.urlparse(address)
    if parsed.scheme in ("http", "https") and parsed.hostname:
        return address.rstrip("/")
    if parsed.scheme == "ray":
        kind, host = "a Ray Client address", parsed.hostname or "HOST"
    elif address == "auto":
        kind, host = "the value that makes ray.init find a local cluster", "127.0.0.1"
    else:
        # "HOST:6379" parses with HOST as the scheme, so split by hand.
        kind, host = "not an http(s) URL (HOST:PORT is the GCS address)", address.split("://")[-1].split(":")[0]
    raise ConfigError(
        f"{source} {address!r} is {kind}, but job submission talks to the Ray dashboard over HTTP; "
        f"use http://{host or 'HOST'}:8265 (the dashboard port, 8265 unless `ray start --dashboard-port` changed it)"
    )


def is_loopback_host(host: str | None) -> bool:
    """Return whether ``host`` names this machine through the loopback interface (or 0.0.0.0)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def read_token() -> str | None:
    """Return the cluster token from ``RAY_AUTH_TOKEN`` or the file ``RAY_AUTH_TOKEN_PATH`` names."""
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    if token:
        return token
    path = os.environ.get(TOKEN_PATH_ENV_VAR)
    if not path:
        return None
    try:
        token = Path(path).expanduser().read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ClusterError(
            f"cannot read the token file {path!r} that {TOKEN_PATH_ENV_VAR} names: {error.strerror}; "
            f"fix the path, or export {TOKEN_ENV_VAR} instead"
        ) from None
    return token or None


def redact(text: str, token: str | None) -> str:
    """Return ``text`` with every occurrence of ``token`` replaced."""
    return text.replace(token, _REDACTED) if token else text


@dataclass(frozen=True)
class Dashboard:
    """A Ray dashboard that responded, and the token that authenticates to it."""

    address: str
    ray_version: str
    token_required: bool
    token: str | None

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(urllib.parse.urlparse(self.address).hostname)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def probe_dashboard(address: str, *, timeout_s: float) -> Dashboard:
    """Ask the dashboard at ``address`` for its auth mode and Ray version, each within ``timeout_s``.

    Raises
    ------
    ClusterError
        When the address does not respond, is not a Ray dashboard, needs a token
        that is not set, or rejects the token. The token never appears in the message.

    NOTE: the timeout bounds connecting and reading; a slow DNS lookup of the
    host name is not bounded by it.
    """
    token = read_token()
    # Dashboards older than token authentication respond 404 here.
    mode = _get_json(address, "/api/authentication_mode", {}, timeout_s, token, missing_ok=True).get(
        "authentication_mode", "unknown"
    )
    token_required = mode == "token"
    if token_required and not token:
        raise ClusterError(
            f"the Ray cluster at {address} has token authentication on, and no token is set; "
            f"export {TOKEN_ENV_VAR}=<the cluster's token> (or {TOKEN_PATH_ENV_VAR}=<file containing it>) "
            "and submit again; `ray get-auth-token` on the head node prints it"
        )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    version = _get_json(address, "/api/version", headers, timeout_s, token).get("ray_version", "unknown")
    logger.info("Ray dashboard %s responded: Ray %s, token authentication %s", address, version, mode)
    return Dashboard(address=address, ray_version=str(version), token_required=token_required, token=token)


def _get_json(
    address: str, path: str, headers: dict[str, str], timeout_s: float, token: str | None, *, missing_ok: bool = False
) -> dict:
    request = urllib.request.Request(address + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        if error.code == 404 and missing_ok:
            return {}
        raise _http_error(address, path, error.code, token) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ClusterError(
            f"the Ray dashboard at {address} is unreachable: {redact(str(reason), token)} (timeout {timeout_s:g} s); "
            f"check that the cluster is running (`ray status` on the head node) and that {address} "
            "opens the dashboard in a browser, or pass the right --address"
        ) from None
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise ClusterError(
            f"{address}{path} responded, but not with the JSON object a Ray dashboard returns; "
            "pass the dashboard's address, http://HOST:8265 by default"
        )
    return payload


def _http_error(address: str, path: str, status: int, token: str | None) -> ClusterError:
    if status == 401:
        return ClusterError(
            f"the Ray cluster at {address} requires a token (HTTP 401); "
            f"export {TOKEN_ENV_VAR}=<the cluster's token> and submit again"
        )
    if status == 403:
        source = TOKEN_ENV_VAR if os.environ.get(TOKEN_ENV_VAR) else TOKEN_PATH_ENV_VAR
        return ClusterError(
            f"the Ray cluster at {address} rejected the token from {source} (HTTP 403); "
            "set it to the token the cluster was started with (`ray get-auth-token` on the head node)"
        )
    if status == 404:
        return ClusterError(
            f"{address}{path} was not found (HTTP 404), so {address} is not a Ray 2.x dashboard; "
            "pass the dashboard's address, http://HOST:8265 by default"
        )
    return ClusterError(f"the Ray dashboard at {address} responded to {path} with HTTP {status}; check the dashboard log on the head node")
