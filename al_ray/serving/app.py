"""The Serve deployments: one ``ModelVersion`` per live version, and the ``Router`` in front.

Every live version runs in a Serve application of its own, so deploying or
deleting a challenger never redeploys the router or the champion. The router
application contains the HTTP API and reaches the versions through
``DeploymentHandle`` objects looked up by application name.

HTTP API of the router:

- ``POST /predict`` ``{"rows": [[...], ...], "key": str, "row_ids": [int, ...]}``
- ``POST /feedback`` ``{"request_id": str, "labels": [class name, ...]}``
- ``GET /versions``, ``GET /stats``, ``GET /metrics`` (Prometheus text)
- ``POST /admin/weights`` ``{"challenger": w, "shadow": bool, "sticky": bool}``,
  ``POST /admin/promote``, ``POST /admin/rollback``

Bad input gets a 4xx response with a JSON body ``{"error": "..."}``.

NOTE: the admin routes have no authentication and share the port of
``/predict``. Keep ``serving.host`` on 127.0.0.1, or put the router behind a
proxy or network policy that lets only operators reach ``/admin``.
"""

# No "from __future__ import annotations" here: FastAPI reads the route methods'
# annotations (Request) at runtime, after Serve has rewrapped the methods in
# functions whose module cannot resolve the annotation strings.
import asyncio
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from starlette.exceptions import HTTPException as StarletteHTTPException

from al_ray.serving.errors import ServingError
from al_ray.serving.feedback import UncertainRowStore
from al_ray.serving.metrics import CONTENT_TYPE, RouterMetrics
from al_ray.serving.requests import RequestError, parse_feedback, parse_json, parse_predict, parse_weights
from al_ray.serving.routing import Role, TrafficSplit, check_weight
from al_ray.serving.settings import RouterSettings
from al_ray.serving.spec import VersionSpec, feature_count, load_classifier
from al_ray.serving.stats import StatsWindow
from al_ray.strategies.measures import margin

__all__ = ["MODEL_DEPLOYMENT", "ROUTER_DEPLOYMENT", "ModelVersion", "Router", "api"]

logger = logging.getLogger(__name__)

MODEL_DEPLOYMENT = "ModelVersion"
ROUTER_DEPLOYMENT = "Router"

# serve.ingress takes the FastAPI app when the class is defined, so it lives at module level.
api = FastAPI(title="al_ray model router", docs_url=None, redoc_url=None, openapi_url=None)


@api.exception_handler(RequestError)
async def _request_error(_request: Request, error: RequestError) -> JSONResponse:
    return JSONResponse({"error": error.message}, status_code=error.status)


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(
        {"error": f"{request.method} {request.url.path}: {error.detail}"}, status_code=error.status_code
    )


@api.exception_handler(RequestValidationError)
async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"error": f"invalid request: {error.errors()}"}, status_code=422)


@api.exception_handler(Exception)
async def _internal_error(request: Request, error: Exception) -> JSONResponse:
    logger.exception("router failed on %s %s", request.method, request.url.path)
    return JSONResponse({"error": f"internal router error: {type(error).__name__}: {error}"}, status_code=500)


# The helpers below are defined before the deployments on purpose: serve.ingress
# pickles the FastAPI app, and with it the globals its routes use, when the
# Router class is defined, so anything defined after the class is missing in the replica.


async def _result(response: Any) -> Any:
    """Await a DeploymentResponse inside a coroutine, which asyncio.wait_for needs."""
    return await response


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, rejecting it once it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, f"invalid Content-Length header {declared!r}")
        if int(declared) > limit:
            raise RequestError(
                413, f"the body has {declared} bytes, more than max_body_bytes {limit}; send fewer rows per request"
            )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(
                413, f"the body exceeds max_body_bytes {limit}; send fewer rows per request"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _count_agreement(
    window: StatsWindow, champion: str, challenger: str, champion_predictions: list[str], challenger_predictions: list[str]
) -> None:
    # Agreement is symmetric, so both versions' counters get the same rows.
    agreed = sum(a == b for a, b in zip(champion_predictions, challenger_predictions))
    for version in (champion, challenger):
        stats = window.of(version)
        stats.compared += len(champion_predictions)
        stats.agreed += agreed


def _incompatibility(candidate: "LiveVersion", champion: "LiveVersion") -> str | None:
    """Return why ``candidate`` cannot be the challenger of ``champion``, or None when it can."""
    if candidate.label == champion.label:
        return f"version {candidate.label} is already the champion"
    if candidate.classes != champion.classes:
        return (
            f"version {candidate.label} serves classes {list(candidate.classes)}, "
            f"but the champion serves {list(champion.classes)}"
        )
    if None not in (candidate.n_features, champion.n_features) and candidate.n_features != champion.n_features:
        return (
            f"version {candidate.label} expects {candidate.n_features} features, "
            f"but the champion expects {champion.n_features}"
        )
    return None


# Seconds between tries to reach a challenger named in the settings: doubled
# after each failure, up to the maximum.
_CHALLENGER_RETRY_S = 1.0
_CHALLENGER_RETRY_MAX_S = 60.0


@serve.deployment(name=MODEL_DEPLOYMENT, max_ongoing_requests=16)
class ModelVersion:
    """One model version: loads its classifier once and scores rows.

    Parameters
    ----------
    spec
        The version's label and where its model is stored.
    """

    def __init__(self, spec: VersionSpec) -> None:
        self._spec = spec
        self._model = load_classifier(spec)
        self._classes = tuple(str(name) for name in self._model.classes)
        self._n_features = feature_count(self._model)
        logger.info("version %s loaded from %s (pid %d)", spec.label, spec.source, os.getpid())

    def describe(self) -> dict[str, Any]:
        """Return the version's label, class names, feature count and process id."""
        return {
            "version": self._spec.label,
            "classes": list(self._classes),
            "n_features": self._n_features,
            "pid": os.getpid(),
        }

    def predict(self, features: np.ndarray) -> dict[str, Any]:
        """Score ``features`` of shape ``(n_rows, n_features)``.

        Returns
        -------
        dict
            ``probabilities`` of shape ``(n_rows, n_classes)``, float64;
            ``predictions``, the most likely class name per row; and
            ``uncertainty`` of shape ``(n_rows,)``, the margin uncertainty
            ``1 - (p1 - p2)`` of the two likeliest classes.
        """
        probabilities = np.asarray(self._model.predict_proba(features), dtype=np.float64)
        expected = (features.shape[0], len(self._classes))
        if probabilities.shape != expected:
            raise ServingError(
                f"version {self._spec.label} returned probabilities of shape {probabilities.shape}, "
                f"expected {expected}"
            )
        indices = probabilities.argmax(axis=1)
        return {
            "probabilities": probabilities,
            "predictions": [self._classes[index] for index in indices],
            "uncertainty": margin(probabilities),
        }


@dataclass(frozen=True)
class LiveVersion:
    """A version the router can call."""

    label: str
    app: str
    handle: Any
    classes: tuple[str, ...]
    n_features: int | None

    def public(self, weight: float) -> dict[str, Any]:
        return {
            "version": self.label,
            "weight": weight,
            "app": self.app,
            "classes": list(self.classes),
            "n_features": self.n_features,
        }


@dataclass
class _ServedRequest:
    """Record of a served request, kept for feedback."""

    version: str
    predictions: list[str]
    classes: tuple[str, ...]
    feedback_received: bool = False


# NOTE: exactly one replica, because the traffic weights, the stats window and
# the request ids kept for feedback live in the replica's memory. With two
# replicas, a weight change would reach one of them and /stats would show half
# the traffic. A restarted replica starts over: the champion it was deployed
# with, no challenger, weight 0 and a new window.
@serve.deployment(name=ROUTER_DEPLOYMENT, num_replicas=1, max_ongoing_requests=128)
@serve.ingress(api)
class Router:
    """Splits traffic between champion and challenger and keeps their stats.

    Every state change (weights, shadow mode, roles, challenger) happens in
    this replica's memory on its event loop, so it applies to the next
    request without a redeploy, and starts a new stats window.

    Shadow mode is independent of the weights: the challenger serves its
    share of requests, and scores a copy of each request the champion serves,
    off the response path. With challenger weight 0 it scores a copy of every
    request and serves none.
    """

    def __init__(self, settings: RouterSettings) -> None:
        self._settings = settings
        self._started = time.time()
        self._split = TrafficSplit(0.0, sticky=settings.sticky, seed=settings.seed)
        self._shadow = settings.shadow
        self._live: dict[Role, LiveVersion | None] = {"champion": None, "challenger": None}
        self._connect_lock = asyncio.Lock()
        self._window = StatsWindow(1, self._split.weights)
        self._served: OrderedDict[str, _ServedRequest] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()
        self._challenger_answers = 0
        self._failures: dict[str, int] = {}
        self._metrics = RouterMetrics()
        self._store = None if settings.feedback_path is None else UncertainRowStore(settings.feedback_path)
        self._configured_challenger: asyncio.Task[None] | None = None

    # HTTP routes.

    @api.post("/predict")
    async def predict(self, request: Request) -> dict[str, Any]:
        payload = parse_json(await _read_body(request, self._settings.max_body_bytes))
        champion = await self._champion()
        parsed = parse_predict(payload, n_features=champion.n_features, max_rows=self._settings.max_rows)
        challenger = self._live["challenger"]
        window = self._window

        role: Role = "champion" if challenger is None else self._split.choose(parsed.key)
        scores = None
        fell_back = False
        if role == "challenger":
            scores = await self._call(challenger, parsed.features, window)
            if scores is None:
                # The challenger's failure is counted in its stats, and the champion serves the request instead.
                role = "champion"
                fell_back = True
        if scores is None:
            scores = await self._call(champion, parsed.features, window)
            if scores is None:
                raise RequestError(503, f"version {champion.label} (champion) failed or timed out; see the router log")
        responder = challenger if role == "challenger" and challenger is not None else champion

        request_id = uuid.uuid4().hex
        self._remember(request_id, _ServedRequest(responder.label, scores["predictions"], responder.classes))
        shadow = challenger if self._shadow and role == "champion" and not fell_back else None
        self._follow_up(parsed, scores, responder, champion, shadow, role, window)
        return {
            "predictions": scores["predictions"],
            "probabilities": scores["probabilities"].tolist(),
            "uncertainty": scores["uncertainty"].tolist(),
            "version": responder.label,
            "role": role,
            "request_id": request_id,
        }

    @api.post("/feedback")
    async def feedback(self, request: Request) -> dict[str, Any]:
        parsed = parse_feedback(parse_json(await _read_body(request, self._settings.max_body_bytes)))
        served = self._served.get(parsed.request_id)

        if served is None:
            raise RequestError(
                404,
                f"unknown request_id {parsed.request_id!r}; the router keeps the last "
                f"{self._settings.feedback_capacity} requests and forgets them when it restarts",
            )
        if served.feedback_received:
            raise RequestError(409, f"feedback for request {parsed.request_id} was already received")
        if len(parsed.labels) != len(served.predictions):
            raise RequestError(
                422,
                f"got {len(parsed.labels)} labels for request {parsed.request_id}, "
                f"which had {len(served.predictions)} rows; send one label per row",
            )

        known = set(served.classes)
        unknown = [(index, label) for index, label in enumerate(parsed.labels) if label not in known]
        if unknown:
            index, label = unknown[0]
            raise RequestError(
                422,
                f"unknown class label {label!r} at position {index} ({len(unknown)} unknown in all); "
                f"the served classes are {', '.join(served.classes)}",
            )

        correct = sum(truth == predicted for truth, predicted in zip(parsed.labels, served.predictions))
        served.feedback_received = True
        live_labels = {version.label for version in self._live.values() if version is not None}
        counted = served.version in live_labels
        if counted:
            stats = self._window.of(served.version)
            stats.labeled += len(parsed.labels)
            stats.correct += correct
        return {
            "request_id": parsed.request_id,
            "version": served.version,
            "labeled": len(parsed.labels),
            "correct": correct,
            "counted": counted,
        }

    @api.get("/versions")
    async def versions(self) -> dict[str, Any]:
        await self._champion()
        return self._versions_view()

    @api.get("/stats")
    async def stats(self) -> dict[str, Any]:
        await self._champion()
        roles = {role: (None if version is None else version.label) for role, version in self._live.items()}
        return self._window.to_json(roles)

    @api.get("/metrics")
    async def metrics(self) -> Response:
        return Response(content=self._metrics.render(), media_type=CONTENT_TYPE)

    @api.post("/admin/weights")
    async def set_weights(self, request: Request) -> dict[str, Any]:
        parsed = parse_weights(parse_json(await _read_body(request, self._settings.max_body_bytes)))
        await self._champion()
        if self._live["challenger"] is None and (parsed.challenger > 0 or parsed.shadow):
            raise RequestError(409, "no challenger is live; deploy one with replace_challenger first")
        self._split.challenger_weight = parsed.challenger
        if parsed.shadow is not None:
            self._shadow = parsed.shadow
        if parsed.sticky is not None:
            self._split.sticky = parsed.sticky
        self._new_window(
            f"challenger weight {parsed.challenger:g}, shadow {self._shadow}, sticky {self._split.sticky}"
        )
        return self._versions_view()

    @api.post("/admin/promote")
    async def promote(self) -> dict[str, Any]:
        champion = await self._champion()
        challenger = self._require_challenger("promote")
        self._live["champion"], self._live["challenger"] = challenger, champion
        self._split.challenger_weight = 0.0
        self._shadow = False
        self._new_window(f"promoted version {challenger.label}; version {champion.label} is now the challenger")
        return self._versions_view()

    @api.post("/admin/rollback")
    async def rollback(self) -> dict[str, Any]:
        await self._champion()
        challenger = self._require_challenger("roll back")
        self._split.challenger_weight = 0.0
        self._shadow = False
        self._new_window(f"rolled back version {challenger.label} to weight 0")
        return self._versions_view()

    # Handle methods, called by al_ray.serving.deploy rather than over HTTP.

    async def ready(self) -> dict[str, Any]:
        """Connect to the champion and return the ``/versions`` view."""
        await self._champion()
        return self._versions_view()

    async def attach_challenger(self, app: str, weight: float = 0.0) -> dict[str, Any]:
        """Make the version in Serve application ``app`` the challenger, at ``weight``.

        Returns ``{"attached": True, "previous_app": ..., "versions": ...}``, or
        ``{"attached": False, "error": ...}`` when the version cannot be reached
        or serves other classes or features than the champion.
        """
        weight = check_weight(weight)
        champion = await self._champion()
        try:
            candidate = await self._connect(app)
        except ServingError as error:
            return {"attached": False, "error": str(error)}
        problem = _incompatibility(candidate, champion)
        if problem is not None:
            return {"attached": False, "error": problem}
        previous = self._live["challenger"]
        self._live["challenger"] = candidate
        self._split.challenger_weight = weight
        self._new_window(f"attached challenger {candidate.label} at weight {weight:g}")
        return {
            "attached": True,
            "previous_app": None if previous is None else previous.app,
            "versions": self._versions_view(),
        }

    async def detach_challenger(self) -> str | None:
        """Stop routing to the challenger and return its application name (None if none)."""
        previous = self._live["challenger"]
        if previous is None:
            return None
        self._live["challenger"] = None
        self._split.challenger_weight = 0.0
        self._shadow = False
        self._new_window(f"detached challenger {previous.label}")
        return previous.app

    # Versions.

    async def _champion(self) -> LiveVersion:
        """Return the champion, connecting to it on first use; 503 when it cannot be reached."""
        async with self._connect_lock:
            champion = self._live["champion"]
            if champion is None:
                try:
                    champion = await self._connect(self._settings.champion_app)
                except ServingError as error:
                    raise RequestError(503, f"the champion is not reachable: {error}") from None
                self._live["champion"] = champion
                self._publish_weights()
                if self._settings.challenger_app is not None and self._configured_challenger is None:
                    # Off the request path: the challenger's application may still be starting.
                    self._configured_challenger = asyncio.get_running_loop().create_task(
                        self._attach_configured_challenger(self._settings.challenger_app)
                    )
        return champion

    async def _attach_configured_challenger(self, app: str) -> None:
        """Attach the challenger named in the settings, retrying until its application is reachable.

        Gives up, and leaves the champion serving every request, when the
        challenger serves other classes or features than the champion, or
        when another challenger was attached through the handle meanwhile.
        """
        delay_s = _CHALLENGER_RETRY_S
        while self._live["challenger"] is None:
            try:
                candidate = await self._connect(app)
            except ServingError as error:
                self._log_failure(f"configured challenger {app!r}", error)
                await asyncio.sleep(delay_s)
                delay_s = min(2 * delay_s, _CHALLENGER_RETRY_MAX_S)
                continue
            champion = self._live["champion"]
            if self._live["challenger"] is not None or champion is None:
                return
            problem = _incompatibility(candidate, champion)
            if problem is not None:
                logger.error("configured challenger %r not attached: %s; the champion serves every request", app, problem)
                return
            self._live["challenger"] = candidate
            self._split.challenger_weight = self._settings.challenger_weight
            self._new_window(
                f"attached configured challenger {candidate.label} at weight {self._settings.challenger_weight:g}"
            )
            return

    async def _connect(self, app: str) -> LiveVersion:
        # get_deployment_handle queries the Serve controller with a blocking call,
        # so it runs in a thread to keep this replica's event loop free.
        try:
            handle = await asyncio.to_thread(serve.get_deployment_handle, MODEL_DEPLOYMENT, app)
            info = await asyncio.wait_for(_result(handle.describe.remote()), self._settings.call_timeout_s)
        except Exception as error:  # any failure to reach the version means it cannot be routed to
            raise ServingError(f"cannot reach Serve application {app!r}: {type(error).__name__}: {error}") from error
        return LiveVersion(
            label=info["version"],
            app=app,
            handle=handle,
            classes=tuple(info["classes"]),
            n_features=info["n_features"],
        )

    def _require_challenger(self, action: str) -> LiveVersion:
        challenger = self._live["challenger"]
        if challenger is None:
            raise RequestError(409, f"cannot {action}: no challenger is live")
        return challenger

    def _versions_view(self) -> dict[str, Any]:
        weights = self._split.weights
        view: dict[str, Any] = {}
        for role, version in self._live.items():
            view[role] = None if version is None else version.public(weights[role])
        view.update(
            {
                "sticky": self._split.sticky,
                "shadow": self._shadow,
                "window": self._window.index,
                "router": {"pid": os.getpid(), "started": self._started},
            }
        )
        return view

    def _new_window(self, reason: str) -> None:
        self._window = StatsWindow(self._window.index + 1, self._split.weights)
        self._challenger_answers = 0
        self._publish_weights()
        logger.info("stats window %d: %s", self._window.index, reason)

    def _publish_weights(self) -> None:
        weights = self._split.weights
        self._metrics.set_weights(
            {role: (version.label, weights[role]) for role, version in self._live.items() if version is not None}
        )

    # Calls to versions.

    async def _call(self, version: LiveVersion, features: np.ndarray, window: StatsWindow) -> dict[str, Any] | None:
        """Score ``features`` on ``version`` and count the call; None when it failed."""
        stats = window.of(version.label)
        stats.requests += 1
        stats.rows += features.shape[0]
        self._metrics.record_call(version.label, features.shape[0])
        start = time.perf_counter()
        try:
            scores = await asyncio.wait_for(_result(version.handle.predict.remote(features)), self._settings.call_timeout_s)
        except Exception as error:  # a failing version is counted and reported, never surfaced to the caller
            stats.errors += 1
            self._metrics.record_error(version.label)
            self._log_failure(f"version {version.label}", error)
            return None
        latency_s = time.perf_counter() - start
        stats.add_latency(latency_s * 1000.0)
        self._metrics.record_latency(version.label, latency_s)
        return scores

    def _follow_up(
        self,
        parsed: Any,
        scores: dict[str, Any],
        responder: LiveVersion,
        champion: LiveVersion,
        shadow: LiveVersion | None,
        role: Role,
        window: StatsWindow,
    ) -> None:
        """Start the work that does not hold up the response: shadow copy, agreement, feedback rows.

        ``shadow`` is the challenger when it should score a copy of this request, else None.
        """
        self._metrics.record_uncertainty(responder.label, scores["uncertainty"])
        if shadow is not None:
            self._spawn(self._shadow_copy(shadow, champion, parsed.features, scores["predictions"], window))
        elif role == "challenger":
            self._challenger_answers += 1
            if self._challenger_answers % self._settings.agreement_every == 0:
                self._spawn(self._compare(champion, responder, parsed.features, scores["predictions"], window))
        if self._store is not None:
            uncertain = scores["uncertainty"] >= self._settings.uncertainty_threshold
            if uncertain.any():
                row_ids = None if parsed.row_ids is None else [parsed.row_ids[i] for i in np.flatnonzero(uncertain)]
                self._spawn(
                    self._store_rows(
                        self._store, parsed.features[uncertain], scores["uncertainty"][uncertain], responder.label, row_ids
                    )
                )

    async def _shadow_copy(
        self,
        challenger: LiveVersion,
        champion: LiveVersion,
        features: np.ndarray,
        champion_predictions: list[str],
        window: StatsWindow,
    ) -> None:
        scores = await self._call(challenger, features, window)
        if scores is not None:
            _count_agreement(window, champion.label, challenger.label, champion_predictions, scores["predictions"])

    async def _compare(
        self,
        champion: LiveVersion,
        challenger: LiveVersion,
        features: np.ndarray,
        challenger_predictions: list[str],
        window: StatsWindow,
    ) -> None:
        # Not counted as a champion request, because the caller got the challenger's response.
        try:
            scores = await asyncio.wait_for(_result(champion.handle.predict.remote(features)), self._settings.call_timeout_s)
        except Exception as error:  # agreement is a sample; a failed comparison is logged and skipped
            self._log_failure("agreement check", error)
            return
        _count_agreement(window, champion.label, challenger.label, scores["predictions"], challenger_predictions)

    async def _store_rows(
        self,
        store: UncertainRowStore,
        features: np.ndarray,
        uncertainty: np.ndarray,
        version: str,
        row_ids: list[int] | None,
    ) -> None:
        try:
            await asyncio.to_thread(store.append, features, uncertainty, version, row_ids)
        except Exception as error:  # the response is already sent; the lost rows are logged
            self._log_failure(f"feedback store {store.path} (rows lost)", error)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if len(self._background) >= self._settings.max_background_calls:
            coroutine.close()
            self._metrics.record_skipped()
            self._log_failure("background work", RuntimeError(f"{len(self._background)} tasks pending; skipped one"))
            return
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _remember(self, request_id: str, served: _ServedRequest) -> None:
        self._served[request_id] = served
        while len(self._served) > self._settings.feedback_capacity:
            self._served.popitem(last=False)

    def _log_failure(self, what: str, error: BaseException) -> None:
        count = self._failures[what] = self._failures.get(what, 0) + 1
        # Log the 1st, 10th, 100th, ... failure of each kind, so a broken version does not flood the log.
        if count == 10 ** (len(str(count)) - 1):
            logger.error("%s failed (%d times so far): %s: %s", what, count, type(error).__name__, error)
