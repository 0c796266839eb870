"""Annotator tokens: generated from ``secrets``, stored only as SHA-256 hashes, compared in constant time.

A token is shown once, when the annotator is added, and never logged. The
store keeps its SHA-256 hex digest, so a copy of the database does not let
anyone sign in. A token has 256 bits of entropy, so an unsalted hash is safe
against guessing. A slow password hash would only add latency to every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_BYTES", "hash_token", "is_well_formed", "new_token", "token_matches"]

TOKEN_BYTES = 32
"""Random bytes in a token; its URL-safe base64 text is 43 characters long."""

# Longer input is rejected before hashing, so a request cannot make the
# server hash megabytes.
_MAX_TOKEN_CHARS = 256


def new_token() -> str:
    """Return a new random token as URL-safe text."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest of ``token``, the form in which the store keeps it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str | None, token_hash: str) -> bool:
    """Return whether ``token`` hashes to ``token_hash``, comparing the digests in constant time."""
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
        return False
    return hmac.compare_digest(hash_token(token), token_hash)


def is_well_formed(token: object) -> bool:
    """Return whether ``token`` is a non-empty string short enough to hash."""
    return isinstance(token, str) and 0 < len(token) <= _MAX_TOKEN_CHARS
