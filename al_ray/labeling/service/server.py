"""Run the labeling service with uvicorn: in the foreground, or in a background thread."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from fastapi import FastAPI

__all__ = ["BackgroundServer", "is_loopback", "serve_forever"]

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0


def is_loopback(host: str) -> bool:
    """Return whether ``host`` names this machine only: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _uvicorn_config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    # No lifespan: the app has no startup or shutdown hooks, and the caller owns the store.
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off", access_log=False)


def serve_forever(
    app: FastAPI, host: str, port: int, *, sockets: list[socket.socket] | None = None, log_level: str = "warning"
) -> None:
    """Serve ``app`` on ``host:port`` (or on ``sockets``, already bound) until SIGINT or SIGTERM."""
    server = uvicorn.Server(_uvicorn_config(app, host, port, log_level))
    logger.info("labeling service listening on %s:%d", host, port)
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on SIGINT, then raises it again for the caller.
        pass
    logger.info("labeling service on %s:%d stopped", host, port)


class BackgroundServer:
    """Serve an app with uvicorn in a daemon thread, for tests, benchmarks and screenshots.

    Port 0 picks a free port; :attr:`url` has the one chosen. Use it as a
    context manager, so the server stops and its thread ends on exit.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning") -> None:
        self._server = uvicorn.Server(_uvicorn_config(app, host, port, log_level))
        self._host = host
        self._thread = threading.Thread(target=self._server.run, name="labeling-uvicorn", daemon=True)
        self.port = port

    @property
    def url(self) -> str:
        """Base URL of the running server, without a trailing slash."""
        return f"http://{self._host}:{self.port}"

    def start(self) -> Self:
        """Start the server and wait until it accepts connections.

        Raises
        ------
        RuntimeError
            If the server did not start within 30 seconds (the port may be taken).
        """
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the labeling service did not start on {self._host}:{self.port}; "
                    "the port may be in use, so pick another one"
                )
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Ask the server to finish its open requests and stop, and wait for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=STARTUP_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
