"""Request bodies: every kind of bad input is rejected with its status and a message that names it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from al_ray.serving.requests import (
    RequestError,
    parse_feedback,
    parse_json,
    parse_predict,
    parse_weights,
)


def _predict(payload, n_features=2, max_rows=3):
    return parse_predict(payload, n_features=n_features, max_rows=max_rows)


def test_predict_valid():
    parsed = _predict({"rows": [[1, 2.5], [0, -3]], "key": "user-1", "row_ids": [7, 9]})
    np.testing.assert_array_equal(parsed.features, np.array([[1.0, 2.5], [0.0, -3.0]]))
    assert parsed.features.dtype == np.float64
    assert parsed.key == "user-1"
    assert parsed.row_ids == [7, 9]


def test_predict_any_width_when_unknown():
    parsed = _predict({"rows": [[1, 2, 3]]}, n_features=None)
    assert parsed.features.shape == (1, 3)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, r'the body has no "rows"'),
        ({"rows": [[1, 2]], "rowz": 1}, r"unknown field\(s\) rowz; allowed: rows, key, row_ids"),
        ({"rows": "1,2"}, r'"rows" must be a list of rows, each a list of numbers, got "1,2"'),
        ({"rows": [1, 2]}, r'"rows" must be a list of rows'),
        ({"rows": []}, r'"rows" is empty; send at least one row'),
        ({"rows": [[1, 2]] * 4}, r"4 rows exceed max_rows 3; split them over several requests"),
        ({"rows": [[1, 2], [1]]}, r"rows have different lengths: row 0 has 2 values but row\(s\) 1 do not"),
        ({"rows": [[1, 2, 3]]}, r"rows have 3 features, but the served model expects 2"),
        ({"rows": [[1, "2"]]}, r'row 0, column 1 is "2"; every feature must be a JSON number'),
        ({"rows": [[1, 2], [None, 1]]}, r"row 1, column 0 is null; every feature must be a JSON number"),
        ({"rows": [[1, True]]}, r"row 0, column 1 is true; every feature must be a JSON number"),
        ({"rows": [[1, float("nan")]]}, r"row 0, column 1 is nan; features must be finite \(1 non-finite"),
        ({"rows": [[float("-inf"), 1]]}, r"row 0, column 0 is -inf; features must be finite"),
        ({"rows": [[10**400, 1]]}, r"row 0, column 0 is inf; features must be finite"),
        ({"rows": [[1, 2]], "key": 5}, r'"key" must be a string of 1 to 256 characters, got 5'),
        ({"rows": [[1, 2]], "key": ""}, r'"key" must be a string of 1 to 256 characters, got ""'),
        ({"rows": [[1, 2]], "row_ids": [1, 2]}, r'"row_ids" has 2 ids for 1 rows; give one per row'),
        ({"rows": [[1, 2]], "row_ids": [1.5]}, r'"row_ids" must be a list of integers, one per row, got \[1.5\]'),
        ({"rows": [[1, 2]], "row_ids": [2**63]}, r'"row_ids" 9223372036854775808 do not fit in a 64-bit integer'),
    ],
)
def test_predict_rejects(payload, message):
    with pytest.raises(RequestError, match=message) as caught:
        _predict(payload)
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, r"the body is not valid JSON \(Expecting property name"),
        (b"\xff\xfe", 400, r"the body is not valid JSON"),
        (b"", 400, r"the body is not valid JSON"),
        (b"[1, 2]", 422, r"the body must be a JSON object, got a JSON array"),
        (b'"rows"', 422, r"the body must be a JSON object, got a JSON string"),
    ],
)
def test_json_rejects(body, status, message):
    with pytest.raises(RequestError, match=message) as caught:
        parse_json(body)
    assert caught.value.status == status


def test_json_nan_literal_reaches_finite_check():
    payload = parse_json(b'{"rows": [[NaN, 1]]}')
    with pytest.raises(RequestError, match=r"row 0, column 0 is nan; features must be finite"):
        _predict(payload)


@given(st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=2, max_size=2), min_size=1, max_size=3))
def test_finite_rows_parse_exactly(rows):
    parsed = _predict({"rows": rows})
    np.testing.assert_array_equal(parsed.features, np.array(rows, dtype=np.float64))


def test_feedback_valid():
    parsed = parse_feedback({"request_id": "abc", "labels": ["A", "B"]})
    assert (parsed.request_id, parsed.labels) == ("abc", ["A", "B"])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"labels": ["A"]}, r'"request_id" must be the request_id of a /predict response, got null'),
        ({"request_id": 3, "labels": ["A"]}, r'"request_id" must be the request_id'),
        ({"request_id": "abc"}, r'"labels" must be a non-empty list of class names, one per row, got null'),
        ({"request_id": "abc", "labels": []}, r'"labels" must be a non-empty list'),
        ({"request_id": "abc", "labels": [1]}, r'"labels" must be a non-empty list'),
        ({"request_id": "abc", "labels": ["A"], "extra": 1}, r"unknown field\(s\) extra; allowed: request_id, labels"),
    ],
)
def test_feedback_rejects(payload, message):
    with pytest.raises(RequestError, match=message) as caught:
        parse_feedback(payload)
    assert caught.value.status == 422


def test_weights_valid():
    parsed = parse_weights({"challenger": 0.25, "shadow": True})
    assert (parsed.challenger, parsed.shadow, parsed.sticky) == (0.25, True, None)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, r'"challenger" must be a weight in \[0, 1\], got null'),
        ({"challenger": 1.5}, r'"challenger" must be a weight in \[0, 1\], got 1.5'),
        ({"challenger": -0.1}, r'"challenger" must be a weight in \[0, 1\], got -0.1'),
        ({"challenger": True}, r'"challenger" must be a weight in \[0, 1\], got true'),
        ({"challenger": 0.5, "shadow": "yes"}, r'"shadow" must be true or false, got "yes"'),
        ({"challenger": 0.5, "sticky": 1}, r'"sticky" must be true or false, got 1'),
        ({"champion": 0.5}, r"unknown field\(s\) champion; allowed: challenger, shadow, sticky"),
    ],
)
def test_weights_rejects(payload, message):
    with pytest.raises(RequestError, match=message):
        parse_weights(payload)


def test_request_error_pickles_status():
    import pickle

    error = pickle.loads(pickle.dumps(RequestError(413, "too big")))
    assert (error.status, error.message) == (413, "too big")
