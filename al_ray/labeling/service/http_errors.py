"""JSON error responses and the request body limit of the labeling service.

Every error the service returns is JSON of the form
``{"error": CODE, "message": TEXT}`` with a 4xx or 5xx status. That holds for
errors of the queue, of request validation, of routing and of the body limit,
so a client needs one error path.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from al_ray.errors import AuditError, LabelStoreError
from al_ray.labeling.errors import LabelingError

__all__ = ["BodySizeLimit", "error_response", "install_error_handlers"]

logger = logging.getLogger(__name__)

# Codes of the HTTP errors that Starlette raises itself (unknown route, wrong method).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def error_response(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Return the service's JSON error response."""
    return JSONResponse({"error": code, "message": message}, status_code=status_code, headers=headers)


def error_code(error: LabelingError) -> str:
    """Return the error's ``code`` attribute, or its class name in snake case without ``Error``."""
    code = getattr(error, "code", None)
    if isinstance(code, str) and code:
        return code
    name = type(error).__name__.removesuffix("Error") or "labeling"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# Pydantic's error types that concern the body as a whole rather than one field.
_BODY_NOT_JSON = "json_invalid"
_BODY_NOT_OBJECT = {"model_attributes_type", "dict_type", "model_type"}
_BODY_HINT = "send a JSON object with header Content-Type: application/json"
# Longest rejected value quoted in a message.
_SHOWN_INPUT_CHARS = 80


def _describe_validation(error: RequestValidationError) -> str:
    parts = []
    for detail in error.errors():
        kind = detail.get("type")
        # The first element of loc is where the value came from: body, query,
        # path or header. For a body that is not JSON, the second is a
        # character offset, which means nothing to the reader.
        fields = [str(part) for part in detail.get("loc", ())[1:]]
        if kind == _BODY_NOT_JSON:
            reason = (detail.get("ctx") or {}).get("error")
            parts.append(f"the body is not valid JSON{f' ({reason})' if reason else ''}; {_BODY_HINT}")
        elif kind in _BODY_NOT_OBJECT and not fields:
            parts.append(f"the body is not a JSON object; {_BODY_HINT}")
        elif kind == "missing" and not fields:
            parts.append(f"the body is empty; {_BODY_HINT}")
        else:
            got = _shown_input(detail) if fields and kind != "missing" else ""
            parts.append(f"{'.'.join(fields) or 'body'}: {detail.get('msg', 'invalid value')}{got}")
    return "invalid request: " + "; ".join(parts)


def _shown_input(detail: dict[str, Any]) -> str:
    """Return ``", got VALUE"`` with the rejected value as JSON, or "" when it is long or not JSON."""
    try:
        text = json.dumps(detail.get("input"))
    except (TypeError, ValueError):
        return ""
    return f", got {text}" if len(text) <= _SHOWN_INPUT_CHARS else ""


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a JSON error response."""

    @app.exception_handler(LabelingError)
    async def _labeling_error(request: Request, error: LabelingError) -> JSONResponse:
        status_code = int(getattr(error, "status_code", 400))
        headers = {"WWW-Authenticate": "Bearer"} if status_code == 401 else None
        if status_code >= 500:
            logger.error("%s %s failed: %s", request.method, request.url.path, error)
        return error_response(status_code, error_code(error), str(error), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe_validation(error))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
        if error.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}"
        return error_response(error.status_code, code, message, getattr(error, "headers", None))

    @app.exception_handler(LabelStoreError)
    async def _store_error(request: Request, error: LabelStoreError) -> JSONResponse:
        logger.error("%s %s failed in the label store: %s", request.method, request.url.path, error)
        return error_response(503, "store_unavailable", "the label store cannot be read or written; try again later")

    @app.exception_handler(AuditError)
    async def _audit_error(request: Request, error: AuditError) -> JSONResponse:
        # The queue appends to the audit log only after the answer committed,
        # and a repeated request appends the missing entry.
        logger.error("%s %s failed in the audit log: %s", request.method, request.url.path, error)
        return error_response(
            503,
            "audit_unavailable",
            "the answer was stored, but its audit entry could not be written; send the same request again",
        )

    @app.exception_handler(Exception)
    async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed to handle the request; see its log")


class BodySizeLimit:
    """ASGI middleware that rejects a request body above ``max_bytes`` with 413, before it is parsed.

    A ``Content-Length`` above the limit is rejected before the body is read.
    A body sent without one (chunked) is read up to the limit and rejected
    once it passes it. A body within the limit is buffered and handed to the
    app unchanged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = self._declared_length(scope)
        if declared is not None and declared < 0:
            await error_response(400, "bad_request", "the Content-Length header is not a whole number")(
                scope, receive, send
            )
            return
        if declared is not None and declared > self.max_bytes:
            await self._reject(scope, receive, send, declared)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client disconnected before its body was complete, so no response is sent.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(scope, receive, send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int | None:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return -1
        return None

    async def _reject(self, scope: Scope, receive: Receive, send: Send, size: Any) -> None:
        logger.warning("rejected a %s-byte body on %s (limit %d)", size, scope.get("path"), self.max_bytes)
        response = error_response(
            413,
            "payload_too_large",
            f"the request body is larger than the limit of {self.max_bytes} bytes "
            "(labeling.max_body_bytes); send one answer per request",
        )
        await response(scope, receive, send)
