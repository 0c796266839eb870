"""Serving metrics to Prometheus: an HTTP endpoint on a daemon thread, and node_exporter textfiles.

The endpoint serves ``GET /metrics`` (any path, as prometheus_client does)
from a thread, so it keeps answering scrapes while the process works. A run
too short to be scraped writes a textfile instead: the file is written to a
temporary name and renamed, so node_exporter never reads half of it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server, write_to_textfile

from al_ray.errors import ConfigError
from al_ray.monitoring.metrics import AlRayMetrics

__all__ = ["MetricsExporter", "acquire_exporter", "write_textfile"]

logger = logging.getLogger(__name__)


class MetricsExporter:
    """An HTTP endpoint that serves one registry.

    Raises
    ------
    ConfigError
        If the address cannot be bound (a port in use, an address not on this machine).
    """

    def __init__(self, registry: CollectorRegistry, *, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        except OSError as error:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {error}; set monitoring.metrics.port to a free "
                "port, or 0 to pick one"
            ) from None
        self.host = host
        self.port = int(self._server.server_address[1])
        logger.info("serving Prometheus metrics at %s", self.url)

    @property
    def url(self) -> str:
        """The endpoint's URL, e.g. ``http://127.0.0.1:9464/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port; closing twice is a no-op."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        self._server = None
        logger.info("stopped serving metrics at %s", self.url)


def write_textfile(metrics: AlRayMetrics, path: str | Path) -> Path:
    """Write every series to ``path`` (a ``.prom`` file) in the text format, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # prometheus_client writes a temporary file beside `path` and renames it.
    write_to_textfile(str(path), metrics.registry)
    return path


class _SharedExporter:
    def __init__(self, exporter: MetricsExporter) -> None:
        self.exporter = exporter
        self.users = 0


_shared: dict[tuple[int, str, int], _SharedExporter] = {}
_shared_lock = threading.Lock()


class ExporterLease:
    """A use of a shared exporter; the exporter stops when its last lease is released."""

    def __init__(self, key: tuple[int, str, int], shared: _SharedExporter) -> None:
        self._key = key
        self._shared: _SharedExporter | None = shared

    @property
    def exporter(self) -> MetricsExporter:
        if self._shared is None:
            raise RuntimeError("the exporter lease was released")
        return self._shared.exporter

    def release(self) -> None:
        """Give the lease back; releasing twice is a no-op."""
        with _shared_lock:
            if self._shared is None:
                return
            self._shared.users -= 1
            if self._shared.users == 0:
                self._shared.exporter.close()
                _shared.pop(self._key, None)
            self._shared = None


def acquire_exporter(metrics: AlRayMetrics, host: str, port: int) -> ExporterLease:
    """Serve ``metrics`` on ``host:port``, or share the endpoint that already serves them in this process.

    The watcher and a loop it runs in the same process ask for the same
    endpoint, so the second gets the first's instead of failing on a port in use.
    A port of 0 picks a free port the first time. Later requests with port 0
    for the same registry and host share that endpoint, so a round run inside
    the watcher is scraped at the watcher's address.
    """
    key = (id(metrics.registry), host, port)
    with _shared_lock:
        shared = _shared.get(key)
        if shared is None:
            shared = _SharedExporter(MetricsExporter(metrics.registry, host=host, port=port))
            _shared[key] = shared
        shared.users += 1
        return ExporterLease(key, shared)
