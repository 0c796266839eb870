"""Exceptions of the serving package.

``ServingError`` is raised when a version cannot be deployed, loaded or
reached. ``RouterHTTPError`` is what :class:`~al_ray.serving.client.RouterClient`
raises when the router responds with an HTTP error. It keeps the status code
and the router's message.
"""

from __future__ import annotations

from al_ray.errors import AlRayError

__all__ = ["RouterHTTPError", "ServingError"]


class ServingError(AlRayError):
    """A model version cannot be deployed, loaded or reached."""


class RouterHTTPError(ServingError):
    """The router responded to a request with an HTTP error status.

    Attributes
    ----------
    status
        The HTTP status code, such as 404 or 422.
    error
        The router's ``error`` message, or the raw body when it sent no JSON.
    """

    def __init__(self, message: str, *, status: int, error: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling an exception passes only its args by default, which this
        # keyword-only constructor cannot take.
        return (_rebuild_router_http_error, (str(self), self.status, self.error))


def _rebuild_router_http_error(message: str, status: int, error: str) -> RouterHTTPError:
    return RouterHTTPError(message, status=status, error=error)
