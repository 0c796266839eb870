"""The router on a real local Ray Serve: split, sticky keys, in-place changes, bad input, feedback.

One Ray and one Serve deployment serve the whole module: champion "1" and
challenger "2", two logistic regressions fitted on different slices of the
letter recognition data.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from al_ray.config import ServingConfig
from al_ray.data.shipped import load_shipped
from al_ray.loop.model_io import save_model
from al_ray.models.sklearn_adapter import SklearnClassifier, build_estimator
from al_ray.serving import RouterClient, RouterHTTPError, ServingError, UncertainRowStore, VersionSpec
from al_ray.serving.deploy import deploy, remove_challenger, replace_challenger, shutdown
from al_ray.serving.routing import key_fraction
from al_ray.strategies.measures import margin

pytestmark = pytest.mark.timeout(300)

APP = "al_ray_test"
MAX_ROWS = 64
MAX_BODY_BYTES = 100_000
THRESHOLD = 0.5
THREADS = 8
BACKGROUND_WAIT_S = 30.0


@dataclass
class Serving:
    client: RouterClient
    config: ServingConfig
    champion: SklearnClassifier
    probe: np.ndarray
    probe_labels: list[str]
    corrupt_path: Path
    store_path: Path


def _fit(data, rows: slice) -> SklearnClassifier:
    estimator = build_estimator("logistic_regression", {"max_iter": 300}, standardize=True, seed=0)
    return SklearnClassifier(estimator, data.classes).fit(data.features[rows], data.labels[rows])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def serving(ray_local, tmp_path_factory):
    folder = tmp_path_factory.mktemp("serving")
    data = load_shipped("letter_recognition")
    champion = _fit(data, slice(0, 1500))
    save_model(champion, folder / "champion.pkl")
    save_model(_fit(data, slice(1500, 1800)), folder / "challenger.pkl")
    (folder / "corrupt.pkl").write_bytes(b"not a pickle")

    config = ServingConfig(
        port=_free_port(),
        max_rows=MAX_ROWS,
        max_body_bytes=MAX_BODY_BYTES,
        feedback={"path": str(folder / "uncertain.db"), "uncertainty_threshold": THRESHOLD},
    )
    client = deploy(
        config,
        VersionSpec("1", model_path=folder / "champion.pkl"),
        VersionSpec("2", model_path=folder / "challenger.pkl"),
        app_name=APP,
        seed=7,
    )
    # Rows 5000..5399 were in neither model's training slice.
    probe = np.asarray(data.features[5000:5400], dtype=np.float64)
    probe_labels = [data.classes[label] for label in data.labels[5000:5400]]
    yield Serving(client, config, champion, probe, probe_labels, folder / "corrupt.pkl", folder / "uncertain.db")
    shutdown(APP)


def _predict_many(client: RouterClient, probe: np.ndarray, n: int, **kwargs: Any) -> list[dict[str, Any]]:
    def one(index: int) -> dict[str, Any]:
        return client.predict([probe[index % len(probe)].tolist()], **kwargs)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(one, range(n)))


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + BACKGROUND_WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _post_raw(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_predict_matches_model(serving):
    serving.client.set_weights(0.0)
    rows = serving.probe[:5]
    answer = serving.client.predict(rows.tolist())

    expected = serving.champion.predict_proba(rows)
    np.testing.assert_allclose(answer["probabilities"], expected, rtol=0, atol=1e-12)
    assert answer["predictions"] == [serving.champion.classes[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(answer["uncertainty"], margin(expected), rtol=0, atol=1e-12)
    assert (answer["version"], answer["role"]) == ("1", "champion")
    assert len(answer["request_id"]) == 32


def test_split_ninety_ten(serving):
    serving.client.set_weights(0.1)
    n, p = 1000, 0.1
    answers = _predict_many(serving.client, serving.probe, n)
    challenger = sum(answer["role"] == "challenger" for answer in answers)
    # The challenger count is Binomial(n, p): mean n p = 100, standard deviation
    # sqrt(n p (1 - p)) = 9.49. A band of 4.5 standard deviations (+-42) fails a
    # correct router with probability about 7e-6 (two-sided normal tail).
    tolerance = 4.5 * math.sqrt(n * p * (1 - p))
    assert abs(challenger - n * p) <= tolerance
    assert {answer["version"] for answer in answers if answer["role"] == "challenger"} == {"2"}

    stats = serving.client.stats()
    assert stats["weights"] == {"champion": 0.9, "challenger": 0.1}
    assert stats["versions"]["challenger"]["requests"] == challenger
    assert stats["versions"]["champion"]["requests"] == n - challenger
    assert stats["versions"]["champion"]["errors"] == 0
    assert stats["versions"]["champion"]["latency_ms"]["count"] == n - challenger


@pytest.mark.parametrize(("weight", "role"), [(0.0, "champion"), (1.0, "challenger")])
def test_weight_exact(serving, weight, role):
    serving.client.set_weights(weight)
    answers = _predict_many(serving.client, serving.probe, 200)
    assert {answer["role"] for answer in answers} == {role}


def test_sticky_keys_stable(serving):
    serving.client.set_weights(0.5, sticky=True)
    keys = [f"user-{index}" for index in range(40)]
    for _ in range(3):
        for key in keys:
            answer = serving.client.predict([serving.probe[0].tolist()], key=key)
            expected = "challenger" if key_fraction(key) < 0.5 else "champion"
            assert answer["role"] == expected, key
    serving.client.set_weights(0.0, sticky=False)


def test_weight_change_in_place(serving):
    before = serving.client.versions()
    serving.client.predict([serving.probe[0].tolist()])
    after = serving.client.set_weights(0.3)

    assert after["router"] == before["router"]
    assert after["window"] == before["window"] + 1
    assert (after["champion"]["weight"], after["challenger"]["weight"]) == (0.7, 0.3)
    stats = serving.client.stats()
    assert stats["window"] == after["window"]
    assert stats["versions"]["champion"]["requests"] == 0
    assert stats["versions"]["challenger"]["requests"] == 0


BAD_PREDICT = [
    (b"{not json", 400, r"the body is not valid JSON"),
    (b"[[1, 2]]", 422, r"the body must be a JSON object, got a JSON array"),
    (b'{"rows": [[1, 2, 3]]}', 422, r"rows have 3 features, but the served model expects 16"),
    (b'{"rows": [[' + b"NaN, 0" + b", 0" * 14 + b"]]}", 422, r"row 0, column 0 is nan; features must be finite"),
    (b'{"rows": [[' + b"1e999, 0" + b", 0" * 14 + b"]]}", 422, r"row 0, column 0 is inf; features must be finite"),
    (b'{"rows": [["a"' + b", 0" * 15 + b"]]}", 422, r'row 0, column 0 is "a"; every feature must be a JSON number'),
    (b'{"rows": [[0, 0], [0]]}', 422, r"rows have different lengths"),
    (json.dumps({"rows": [[0] * 16] * (MAX_ROWS + 1)}).encode(), 422, rf"{MAX_ROWS + 1} rows exceed max_rows {MAX_ROWS}"),
    (b'{"rows": [[0, 0]], "keys": "a"}', 422, r"unknown field\(s\) keys"),
    (b" " * (MAX_BODY_BYTES + 1), 413, rf"the body has {MAX_BODY_BYTES + 1} bytes, more than max_body_bytes {MAX_BODY_BYTES}"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_PREDICT)
def test_predict_bad_input(serving, body, status, message):
    code, answer = _post_raw(f"{serving.client.base_url}/predict", body)
    assert code == status
    assert set(answer) == {"error"}
    assert re.search(message, answer["error"]), answer["error"]


def test_predict_chunked_body_too_large(serving):
    # A chunked body declares no Content-Length, so only counting its bytes catches it.
    chunk = b" " * 10_000
    connection = http.client.HTTPConnection("127.0.0.1", serving.config.port, timeout=30)
    try:
        connection.request(
            "POST", "/predict", body=iter([chunk] * 11), encode_chunked=True, headers={"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 413
    assert answer == {"error": f"the body exceeds max_body_bytes {MAX_BODY_BYTES}; send fewer rows per request"}


def test_unknown_route_json(serving):
    code, answer = _post_raw(f"{serving.client.base_url}/predictions", b"{}")
    assert code == 404
    assert answer == {"error": "POST /predictions: Not Found"}


def test_feedback_counts_correct(serving):
    serving.client.set_weights(0.0)
    rows = serving.probe[:10]
    answer = serving.client.predict(rows.tolist())
    truth = serving.probe_labels[:10]
    expected_correct = sum(
        serving.champion.classes[index] == label
        for index, label in zip(serving.champion.predict_proba(rows).argmax(axis=1), truth)
    )

    result = serving.client.feedback(answer["request_id"], truth)
    assert result == {
        "request_id": answer["request_id"],
        "version": "1",
        "labeled": 10,
        "correct": expected_correct,
        "counted": True,
    }
    assert serving.client.stats()["versions"]["champion"]["feedback"] == {"labeled": 10, "correct": expected_correct}


def test_feedback_bad_input(serving):
    answer = serving.client.predict(serving.probe[:2].tolist())
    cases = [
        ({"request_id": "0" * 32, "labels": ["A"]}, 404, r"unknown request_id '0{32}'; the router keeps the last 10000"),
        ({"request_id": answer["request_id"], "labels": ["A"]}, 422, r"got 1 labels for request .*which had 2 rows"),
        (
            {"request_id": answer["request_id"], "labels": ["A", "AA"]},
            422,
            r"unknown class label 'AA' at position 1 \(1 unknown in all\); the served classes are A, B, C",
        ),
    ]
    for body, status, message in cases:
        with pytest.raises(RouterHTTPError, match=message) as caught:
            serving.client._request("POST", "/feedback", body)
        assert caught.value.status == status
    serving.client.feedback(answer["request_id"], ["A", "B"])
    with pytest.raises(RouterHTTPError, match=r"feedback for request .* was already received") as caught:
        serving.client.feedback(answer["request_id"], ["A", "B"])
    assert caught.value.status == 409


def test_admin_bad_input(serving):
    with pytest.raises(RouterHTTPError, match=r'"challenger" must be a weight in \[0, 1\], got 1.5') as caught:
        serving.client.set_weights(1.5)
    assert caught.value.status == 422


def test_uncertain_rows_stored(serving):
    serving.client.set_weights(0.0)
    rows = serving.probe[100:140]
    row_ids = list(range(900_000, 900_040))
    serving.client.predict(rows.tolist(), row_ids=row_ids)
    uncertain = margin(serving.champion.predict_proba(rows)) >= THRESHOLD
    expected_ids = [row_id for row_id, keep in zip(row_ids, uncertain) if keep]
    assert 0 < len(expected_ids) < len(row_ids)

    store = UncertainRowStore(serving.store_path)

    def stored():
        read = store.read_since(0)
        return [index for index, row_id in enumerate(read.row_ids) if row_id is not None and row_id >= 900_000], read

    _wait_until(lambda: len(stored()[0]) == len(expected_ids), "the uncertain rows in the store")
    positions, read = stored()
    assert [read.row_ids[i] for i in positions] == expected_ids
    assert {read.versions[i] for i in positions} == {"1"}
    np.testing.assert_array_equal(read.features[positions], rows[uncertain])


def test_shadow_scores_copies(serving):
    serving.client.set_weights(0.0, shadow=True)
    answers = _predict_many(serving.client, serving.probe, 20)
    assert {answer["role"] for answer in answers} == {"champion"}

    _wait_until(lambda: serving.client.stats()["versions"]["challenger"]["requests"] == 20, "20 shadow copies")
    stats = serving.client.stats()
    assert stats["versions"]["champion"]["requests"] == 20
    _wait_until(
        lambda: serving.client.stats()["versions"]["challenger"]["agreement"]["compared"] == 20, "20 compared rows"
    )
    agreement = serving.client.stats()["versions"]["challenger"]["agreement"]
    assert 0 <= agreement["agreed"] <= 20
    serving.client.set_weights(0.0, shadow=False)


def test_shadow_with_split(serving):
    serving.client.set_weights(0.5, shadow=True)
    answers = _predict_many(serving.client, serving.probe, 40)
    served_by_champion = sum(answer["role"] == "champion" for answer in answers)

    # The challenger serves its share and scores a copy of every other request: 40 calls in all.
    _wait_until(lambda: serving.client.stats()["versions"]["challenger"]["requests"] == 40, "40 challenger calls")
    assert serving.client.stats()["versions"]["champion"]["requests"] == served_by_champion
    serving.client.set_weights(0.0, shadow=False)


def test_agreement_sampled(serving):
    serving.client.set_weights(1.0)
    for index in range(25):
        serving.client.predict([serving.probe[index].tolist()])
    # Every 5th request the challenger serves is also scored by the champion: 5 of 25 one-row requests.
    _wait_until(
        lambda: serving.client.stats()["versions"]["challenger"]["agreement"]["compared"] == 5, "5 compared rows"
    )
    stats = serving.client.stats()
    assert stats["versions"]["champion"]["requests"] == 0
    assert stats["versions"]["champion"]["agreement"] == stats["versions"]["challenger"]["agreement"]


def test_metrics_parse(serving):
    serving.client.predict(serving.probe[:3].tolist())
    families = {family.name: family for family in text_string_to_metric_families(serving.client.metrics())}

    requests = {sample.labels["version"]: sample.value for sample in families["al_ray_serving_requests"].samples
                if sample.name == "al_ray_serving_requests_total"}
    assert requests["1"] > 0
    assert requests["2"] > 0
    for name in ("al_ray_serving_latency_seconds", "al_ray_serving_uncertainty"):
        samples = families[name].samples
        total = next(s.value for s in samples if s.name == f"{name}_count" and s.labels["version"] == "1")
        infinite = next(
            s.value for s in samples if s.name == f"{name}_bucket" and s.labels == {"version": "1", "le": "+Inf"}
        )
        assert infinite == total > 0
    weights = {(s.labels["version"], s.labels["role"]): s.value for s in families["al_ray_serving_weight"].samples}
    assert weights == {("1", "champion"): 0.0, ("2", "challenger"): 1.0}


def test_promote_and_rollback(serving):
    before = serving.client.versions()
    promoted = serving.client.promote()
    assert (promoted["champion"]["version"], promoted["champion"]["weight"]) == ("2", 1.0)
    assert (promoted["challenger"]["version"], promoted["challenger"]["weight"]) == ("1", 0.0)
    assert promoted["router"] == before["router"]
    assert serving.client.predict([serving.probe[0].tolist()])["version"] == "2"

    serving.client.set_weights(0.5)
    rolled_back = serving.client.rollback()
    assert rolled_back["challenger"]["weight"] == 0.0
    assert {serving.client.predict([row.tolist()])["version"] for row in serving.probe[:20]} == {"2"}

    restored = serving.client.promote()
    assert (restored["champion"]["version"], restored["challenger"]["version"]) == ("1", "2")


def test_failing_challenger_keeps_champion(serving):
    serving.client.rollback()
    stop = threading.Event()
    answers: list[dict[str, Any]] = []
    failures: list[Exception] = []

    def send() -> None:
        while not stop.is_set():
            try:
                answers.append(serving.client.predict([serving.probe[0].tolist()]))
            except Exception as error:  # collected so the test can show every failed request
                failures.append(error)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        with pytest.raises(ServingError, match=r"version 3 \(.*corrupt.pkl\) failed to start: .*cannot load model file"):
            replace_challenger(serving.config, VersionSpec("3", model_path=serving.corrupt_path), app_name=APP, weight=0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert answers
    assert {answer["role"] for answer in answers} == {"champion"}
    versions = serving.client.versions()
    assert (versions["champion"]["version"], versions["champion"]["weight"]) == ("1", 1.0)
    assert (versions["challenger"]["version"], versions["challenger"]["weight"]) == ("2", 0.0)

    from ray import serve

    assert f"{APP}-version-3" not in serve.status().applications
    assert remove_challenger(app_name=APP) == f"{APP}-version-2"
    assert serving.client.versions()["challenger"] is None
