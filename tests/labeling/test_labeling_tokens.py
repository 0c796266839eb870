"""Annotator tokens: random, stored only as SHA-256 hashes, checked in constant time, never logged."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from al_ray.labeling.errors import (
    AnnotatorExistsError,
    AuthenticationError,
    InvalidLabelError,
)
from al_ray.labeling.queue import Annotator
from al_ray.labeling.schema import annotators_table
from al_ray.labeling.tokens import hash_token, new_token, token_matches

# sha256("abc"), from FIPS 180-2 appendix B.1.
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_hash_known_value() -> None:
    assert hash_token("abc") == ABC_SHA256


def test_new_tokens_distinct_and_long() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(token) == 43 for token in tokens)


@pytest.mark.parametrize(
    ("token", "expected"),
    [("abc", True), ("abd", False), ("", False), (None, False), ("a" * 257, False)],
)
def test_token_matches(token, expected) -> None:
    assert token_matches(token, ABC_SHA256) is expected


def test_token_stored_hashed(make_queue, store) -> None:
    queue = make_queue()
    token = queue.add_annotator("ann", role="admin")
    with store.read_transaction("read test annotators") as connection:
        row = connection.execute(sa.select(annotators_table)).one()
    assert row.token_hash == hash_token(token)
    assert token not in tuple(str(value) for value in row)
    assert queue.authenticate(token) == Annotator("ann", "admin")


def test_token_never_logged(make_queue, caplog) -> None:
    queue = make_queue()
    with caplog.at_level(logging.DEBUG):
        token = queue.add_annotator("ann")
        queue.authenticate(token)
        with pytest.raises(AuthenticationError):
            queue.authenticate(token + "x")
        new = queue.reset_token("ann")
    assert "Added annotator ann" in caplog.text
    assert token not in caplog.text
    assert new not in caplog.text


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 300])
def test_authenticate_rejects(make_queue, token) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    with pytest.raises(AuthenticationError) as raised:
        queue.authenticate(token)
    assert raised.value.status_code == 401
    assert raised.value.code == "unauthenticated"


def test_reset_and_deactivate(make_queue) -> None:
    queue = make_queue()
    old = queue.add_annotator("ann")
    new = queue.reset_token("ann")
    with pytest.raises(AuthenticationError, match="The token matches no annotator"):
        queue.authenticate(old)
    assert queue.authenticate(new).annotator_id == "ann"

    queue.set_active("ann", False)
    with pytest.raises(AuthenticationError, match="Annotator 'ann' is deactivated"):
        queue.authenticate(new)
    with pytest.raises(AuthenticationError, match="Annotator 'zed' does not exist"):
        queue.reset_token("zed")


def test_add_annotator_errors(make_queue) -> None:
    queue = make_queue()
    queue.add_annotator("ann")
    with pytest.raises(AnnotatorExistsError, match="Annotator 'ann' already exists") as raised:
        queue.add_annotator("ann")
    assert raised.value.status_code == 409
    with pytest.raises(InvalidLabelError, match="Annotator id 'a b' is invalid"):
        queue.add_annotator("a b")
    with pytest.raises(InvalidLabelError, match="Annotator id '' is invalid"):
        queue.add_annotator("")
    with pytest.raises(InvalidLabelError, match=r"role must be one of \['annotator', 'admin'\], got 'boss'"):
        queue.add_annotator("bob", role="boss")
    assert [row["annotator_id"] for row in queue.annotators()] == ["ann"]
