"""Argument types shared by the benchmark scripts: each rejects a bad value with a message naming it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

__all__ = ["choice_list", "int_list", "non_negative_int", "positive_int", "whole_number"]


def whole_number(text: str, minimum: int) -> int:
    """Return ``text`` as an int of at least ``minimum``, or raise the argparse error naming it."""
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: expected a whole number >= {minimum}")
    return value


def positive_int(text: str) -> int:
    return whole_number(text, 1)


def non_negative_int(text: str) -> int:
    return whole_number(text, 0)


def int_list(text: str) -> list[int]:
    """Return a comma-separated list of whole numbers >= 1."""
    return [positive_int(part.strip()) for part in text.split(",")]


def choice_list(allowed: Sequence[str], kind: str) -> Callable[[str], list[str]]:
    """Return an argparse type for a comma-separated list of names from ``allowed``."""

    def parse(text: str) -> list[str]:
        names = [part.strip() for part in text.split(",")]
        for name in names:
            if name not in allowed:
                raise argparse.ArgumentTypeError(
                    f"unknown {kind} {name!r}: expected a comma-separated list of {', '.join(allowed)}"
                )
        return names

    return parse
