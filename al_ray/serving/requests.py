"""Parsing and checking the bodies of the router's HTTP requests.

Each check raises :class:`RequestError` with the HTTP status of the response and
a message that names what was wrong, so that bad input gets a 4xx response
and never reaches a model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from al_ray.data.types import format_ids

__all__ = [
    "FeedbackRequest",
    "PredictRequest",
    "RequestError",
    "WeightsRequest",
    "parse_feedback",
    "parse_json",
    "parse_predict",
    "parse_weights",
]

MAX_KEY_CHARS = 256
_PREDICT_FIELDS = ("rows", "key", "row_ids")
_FEEDBACK_FIELDS = ("request_id", "labels")
_WEIGHTS_FIELDS = ("challenger", "shadow", "sticky")


class RequestError(Exception):
    """A request the router rejects, with the HTTP status of the response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __reduce__(self) -> tuple[type[RequestError], tuple[int, str]]:
        # Exceptions cross process boundaries (Serve handle calls) by pickling,
        # which by default passes only args and would lose the status.
        return (RequestError, (self.status, self.message))


@dataclass(frozen=True)
class PredictRequest:
    """A checked ``POST /predict`` body.

    Attributes
    ----------
    features
        Shape ``(n_rows, n_features)``, float64, finite.
    key
        The caller's routing key, or None.
    row_ids
        The caller's ``row_id`` of each row, or None.
    """

    features: np.ndarray
    key: str | None
    row_ids: list[int] | None


@dataclass(frozen=True)
class FeedbackRequest:
    """A checked ``POST /feedback`` body: true class names of an earlier request's rows."""

    request_id: str
    labels: list[str]


@dataclass(frozen=True)
class WeightsRequest:
    """A checked ``POST /admin/weights`` body; ``shadow`` and ``sticky`` are None when they stay as they are."""

    challenger: float
    shadow: bool | None
    sticky: bool | None


def parse_json(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object.

    Python's decoder accepts the non-standard ``NaN`` and ``Infinity``
    literals, so feature checks must still look for non-finite values.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(400, f"the body is not valid JSON ({error}); send a JSON object") from None
    if not isinstance(payload, dict):
        raise RequestError(422, f"the body must be a JSON object, got a JSON {_json_type(payload)}")
    return payload


def parse_predict(payload: dict[str, Any], *, n_features: int | None, max_rows: int) -> PredictRequest:
    """Check a ``POST /predict`` body.

    Parameters
    ----------
    payload
        The decoded body: ``{"rows": [[...], ...], "key": str, "row_ids": [int, ...]}``,
        where only ``rows`` is required.
    n_features
        Feature count the champion expects, or None when it accepts any.
    max_rows
        Maximum number of rows per request.
    """
    _reject_unknown_fields(payload, _PREDICT_FIELDS)
    if "rows" not in payload:
        raise RequestError(422, 'the body has no "rows"; send {"rows": [[feature, ...], ...]}')
    features = _parse_rows(payload["rows"], n_features=n_features, max_rows=max_rows)
    key = payload.get("key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_CHARS):
        raise RequestError(422, f'"key" must be a string of 1 to {MAX_KEY_CHARS} characters, got {_short(key)}')
    row_ids = payload.get("row_ids")
    if row_ids is not None:
        row_ids = _parse_row_ids(row_ids, features.shape[0])
    return PredictRequest(features=features, key=key, row_ids=row_ids)


def parse_feedback(payload: dict[str, Any]) -> FeedbackRequest:
    """Check the shape of a ``POST /feedback`` body; the router checks ids and class names."""
    _reject_unknown_fields(payload, _FEEDBACK_FIELDS)
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise RequestError(422, f'"request_id" must be the request_id of a /predict response, got {_short(request_id)}')
    labels = payload.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) for label in labels):
        raise RequestError(422, f'"labels" must be a non-empty list of class names, one per row, got {_short(labels)}')
    return FeedbackRequest(request_id=request_id, labels=labels)


def parse_weights(payload: dict[str, Any]) -> WeightsRequest:
    """Check a ``POST /admin/weights`` body: ``{"challenger": w, "shadow": bool, "sticky": bool}``."""
    _reject_unknown_fields(payload, _WEIGHTS_FIELDS)
    weight = payload.get("challenger")
    valid = (
        isinstance(weight, (int, float))
        and not isinstance(weight, bool)
        and math.isfinite(weight)
        and 0 <= weight <= 1
    )
    if not valid:
        raise RequestError(422, f'"challenger" must be a weight in [0, 1], got {_short(weight)}')
    switches = {}
    for name in ("shadow", "sticky"):
        value = payload.get(name)
        if value is not None and not isinstance(value, bool):
            raise RequestError(422, f'"{name}" must be true or false, got {_short(value)}')
        switches[name] = value
    return WeightsRequest(challenger=float(weight), **switches)


def _parse_rows(rows: object, *, n_features: int | None, max_rows: int) -> np.ndarray:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise RequestError(422, f'"rows" must be a list of rows, each a list of numbers, got {_short(rows)}')
    if not rows:
        raise RequestError(422, '"rows" is empty; send at least one row')
    if len(rows) > max_rows:
        raise RequestError(422, f"{len(rows)} rows exceed max_rows {max_rows}; split them over several requests")

    width = len(rows[0])
    ragged = [index for index, row in enumerate(rows) if len(row) != width]
    if ragged:
        raise RequestError(
            422,
            f"rows have different lengths: row 0 has {width} values but row(s) {format_ids(ragged)} do not; "
            "every row needs the same features",
        )
    if n_features is not None and width != n_features:
        raise RequestError(422, f"rows have {width} features, but the served model expects {n_features}")

    # bool is a subclass of int, so the check compares exact types.
    if not {type(value) for row in rows for value in row} <= {int, float}:
        _raise_first_non_number(rows)
    try:
        features = np.array(rows, dtype=np.float64)
    except OverflowError:
        features = np.array([[_as_float(value) for value in row] for row in rows], dtype=np.float64)

    bad = np.argwhere(~np.isfinite(features))
    if bad.size:
        row_index, column = (int(value) for value in bad[0])
        raise RequestError(
            422,
            f"row {row_index}, column {column} is {features[row_index, column]}; "
            f"features must be finite ({bad.shape[0]} non-finite value(s) in the request)",
        )
    return features


def _as_float(value: float) -> float:
    # An integer beyond float64's range becomes inf, which the finite check reports.
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _raise_first_non_number(rows: Sequence[Sequence[object]]) -> None:
    for row_index, row in enumerate(rows):
        for column, value in enumerate(row):
            if type(value) not in (int, float):
                raise RequestError(
                    422, f"row {row_index}, column {column} is {_short(value)}; every feature must be a JSON number"
                )


def _parse_row_ids(row_ids: object, n_rows: int) -> list[int]:
    if not isinstance(row_ids, list) or not all(type(row_id) is int for row_id in row_ids):
        raise RequestError(422, f'"row_ids" must be a list of integers, one per row, got {_short(row_ids)}')
    if len(row_ids) != n_rows:
        raise RequestError(422, f'"row_ids" has {len(row_ids)} ids for {n_rows} rows; give one per row')
    out_of_range = [row_id for row_id in row_ids if not -(2**63) <= row_id < 2**63]
    if out_of_range:
        raise RequestError(422, f'"row_ids" {format_ids(out_of_range)} do not fit in a 64-bit integer')
    return row_ids


def _reject_unknown_fields(payload: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise RequestError(422, f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _short(value: object, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
