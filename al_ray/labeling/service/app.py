"""The labeling service: a FastAPI app with the annotators' HTTP API and the labeling page.

Endpoints (every ``/api`` one needs ``Authorization: Bearer TOKEN``):

- ``GET /api/session``: the caller's id and role, the classes and their keys.
- ``GET /api/next``: lease the caller's next task and return its row, or
  ``{"task": null}`` when none is left for them.
- ``POST /api/answers`` ``{item_id, label, submission_id}``: store an answer,
  201 when stored, 200 with ``"stored": false`` when ``submission_id`` was
  stored before.
- ``POST /api/skip`` ``{item_id}``: give a leased task back; it is not
  offered to the caller again.
- ``POST /api/release`` ``{item_id}``: end the caller's lease without a skip,
  so the task returns to the queue at once; the page sends it when it closes.
- ``GET /api/progress``, ``GET /api/my-answers``: the caller's own counts and answers.
- ``GET /api/admin/quality``: agreement, gold accuracy and counts per annotator
  (admin tokens only).
- ``GET /healthz``: liveness, no token.
- ``GET /metrics``: Prometheus metrics, no token, when the app is built with
  ``metrics``. They hold counts only: answers and their cost per annotator id,
  open tasks and held leases, never a token or an answer's label.
- ``GET /``: the labeling page; ``GET /favicon.ico``: its icon.

Errors are JSON ``{"error": CODE, "message": TEXT}``; see :mod:`.http_errors`.
The module does not postpone annotations, because FastAPI reads the
annotations of the routes defined inside :func:`create_app` at run time.
Route functions are plain ``def`` because the queue is synchronous SQLAlchemy,
so FastAPI runs them in its thread pool and one slow database call does not
stall the others.
"""

import logging
import math
import threading
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from al_ray.errors import ConfigError
from al_ray.labeling.config import LabelingConfig
from al_ray.labeling.errors import AuthenticationError, ForbiddenError
from al_ray.labeling.queue import Annotator, LabelQueue
from al_ray.labeling.service.http_errors import BodySizeLimit, install_error_handlers
from al_ray.labeling.service.keys import shortcut_keys, skip_keys
from al_ray.labeling.service.rows import RowSource

if TYPE_CHECKING:
    from al_ray.monitoring.metrics import AlRayMetrics

__all__ = ["AnswerRequest", "SkipRequest", "create_app"]

logger = logging.getLogger(__name__)

ADMIN_ROLE = "admin"

# The page loads only its own files, so the browser may run no other script or style.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class AnswerRequest(BaseModel):
    """The body of ``POST /api/answers``."""

    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(..., ge=1, strict=True, description="item id from GET /api/next, a JSON integer")
    label: str = Field(..., min_length=1, max_length=200, strict=True, description="one of the class names")
    submission_id: str = Field(
        ...,
        strict=True,
        min_length=1,
        max_length=128,
        description="client-chosen id of this submission, such as a UUID; resending it stores nothing twice",
    )


class SkipRequest(BaseModel):
    """The body of ``POST /api/skip`` and ``POST /api/release``."""

    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(..., ge=1, strict=True, description="item id from GET /api/next, a JSON integer")


def create_app(
    queue: LabelQueue, rows: RowSource, config: LabelingConfig, *, metrics: "AlRayMetrics | None" = None
) -> FastAPI:
    """Build the labeling service over ``queue``, showing rows from ``rows``.

    Parameters
    ----------
    queue
        The run's label queue; it authenticates tokens and stores answers.
    rows
        The run's rows, by ``row_id``, and how the page shows them.
    config
        The run's ``labeling`` section; ``max_body_bytes`` limits request
        bodies, and ``cost_per_label`` prices each stored answer in the metrics.
    metrics
        Where to count stored answers and the queue's size, served at
        ``GET /metrics``; None serves no metrics.

    Raises
    ------
    ConfigError
        If the queue and the rows have different classes.
    """
    app = FastAPI(
        title="al_ray labeling",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=config.max_body_bytes)
    # Added last, so it is the outermost layer and a 413 from the body limit gets the headers too.
    app.add_middleware(SecurityHeaders)

    classes = list(rows.classes)
    if tuple(classes) != tuple(queue.classes):
        raise ConfigError(
            f"the queue's classes {list(queue.classes)[:10]} differ from the dataset's {classes[:10]}; "
            "build both from the same run config"
        )
    keys = shortcut_keys(classes)
    session_classes = [{"label": label, "key": keys[label]} for label in classes]
    page_skip_keys = skip_keys(classes)

    # Requests that write queue one at a time on this lock, in arrival order
    # (roughly), not in SQLite's busy handler, whose growing sleeps gave waits
    # of several seconds to some requests with 10 annotators at once
    # (benchmarks/labeling_latency.py). Reads do not take it.
    write_gate = threading.Lock()

    labeling_metrics = _mount_metrics(app, queue, metrics, config) if metrics is not None else None

    def current_annotator(request: Request) -> Annotator:
        return queue.authenticate(_bearer_token(request))

    Caller = Annotated[Annotator, Depends(current_annotator)]

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/session")
    def session(annotator: Caller) -> dict[str, Any]:
        return {
            "annotator_id": annotator.annotator_id,
            "role": annotator.role,
            "classes": session_classes,
            "skip_keys": page_skip_keys,
            "display": rows.display,
        }

    @app.get("/api/next")
    def next_task(annotator: Caller) -> dict[str, Any]:
        with write_gate:
            leased = queue.next_task(annotator.annotator_id)
        if leased is None:
            return {"task": None}
        # The kind (task or gold) stays on the server, so gold rows look like any other.
        return {
            "task": {
                "item_id": leased.item_id,
                "round_index": leased.round_index,
                "expires_at": leased.expires_at,
                "row": rows.row(leased.row_id),
            }
        }

    @app.post("/api/answers", status_code=201)
    def submit_answer(body: AnswerRequest, annotator: Caller) -> JSONResponse:
        with write_gate:
            result = queue.submit(annotator.annotator_id, body.item_id, body.label, body.submission_id)
        if result.stored:
            logger.info("annotator %s answered item %d", annotator.annotator_id, result.item_id)
            if labeling_metrics is not None:
                labeling_metrics.labels_stored([annotator.annotator_id])
        payload = {"item_id": result.item_id, "label": result.label, "stored": result.stored}
        return JSONResponse(payload, status_code=201 if result.stored else 200)

    @app.post("/api/skip")
    def skip_task(body: SkipRequest, annotator: Caller) -> dict[str, Any]:
        with write_gate:
            queue.skip(annotator.annotator_id, body.item_id)
        return {"item_id": body.item_id, "skipped": True}

    @app.post("/api/release")
    def release_task(body: SkipRequest, annotator: Caller) -> dict[str, Any]:
        with write_gate:
            released = queue.release(annotator.annotator_id, body.item_id)
        return {"item_id": body.item_id, "released": released}

    @app.get("/api/progress")
    def progress(annotator: Caller) -> dict[str, int]:
        counts = queue.progress(annotator.annotator_id)
        return {"answered": counts.answered, "skipped": counts.skipped, "remaining": counts.remaining}

    @app.get("/api/my-answers")
    def my_answers(annotator: Caller) -> dict[str, Any]:
        return {"answers": queue.my_answers(annotator.annotator_id)}

    @app.get("/api/admin/quality")
    def quality(annotator: Caller) -> dict[str, Any]:
        if annotator.role != ADMIN_ROLE:
            raise ForbiddenError(
                f"annotator {annotator.annotator_id!r} is not an admin; the quality view needs a token "
                "made with `al-ray label annotators add NAME --admin CONFIG`"
            )
        return _json_ready(queue.quality())

    static = resources.files("al_ray.labeling.service") / "static"

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    # Browsers request /favicon.ico even when the page links an icon, so this route returns the SVG icon.
    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(str(static / "favicon.svg"), media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def _mount_metrics(app: FastAPI, queue: LabelQueue, metrics: "AlRayMetrics", config: LabelingConfig):
    """Add ``GET /metrics`` to ``app`` and return the recorder that counts stored answers."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from al_ray.monitoring.metrics import LabelingMetrics

    recorder = LabelingMetrics(metrics, cost_per_label=config.cost_per_label)

    # No token: Prometheus scrapes without one, and the series hold only counts.
    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        counts = queue.counts()
        recorder.set_pending_tasks(counts.pending_tasks)
        recorder.set_leased_tasks(counts.leased_tasks)
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return recorder


class SecurityHeaders:
    """ASGI middleware that adds the page's security headers to every response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _SECURITY_HEADERS.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _bearer_token(request: Request) -> str | None:
    """Return the token of an ``Authorization: Bearer TOKEN`` header, or None when there is no header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer TOKEN'")
    return token.strip()


def _json_ready(value: Any) -> Any:
    """Return ``value`` with tuple keys joined by ``" / "`` and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {
            (" / ".join(str(part) for part in key) if isinstance(key, tuple) else str(key)): _json_ready(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    if isinstance(value, float) and math.isnan(value):
        return None  # NaN, such as a kappa without enough shared items, is not valid JSON
    return value
