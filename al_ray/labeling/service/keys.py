"""Keyboard shortcuts of the labeling page: one key per class, and the keys that skip."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["SKIP_KEYS", "shortcut_keys", "skip_keys"]

SKIP_KEYS = ("s", "Escape")
"""Keys that skip a task; ``s`` only while no class takes it."""

# Keys handed to classes whose own name is not a free single key, in this order.
# ``s`` is left out so that it stays the skip key.
_SPARE_KEYS = "1234567890abcdefghijklmnopqrtuvwxyz"


def shortcut_keys(classes: Sequence[str]) -> dict[str, str | None]:
    """Return the key of each class, lower case, or None once the spare keys run out.

    A class named by one digit or letter gets that key (``"7"`` gets ``7`` and
    ``"A"`` gets ``a``), so MNIST digits and letters are typed as they read.
    The other classes get the first spare key in ``1..9, 0, a..z`` (without
    ``s``) that no class took yet.
    """
    keys: dict[str, str | None] = {}
    used_keys: set[str] = set()
    for name in classes:
        key = name.lower()
        if len(key) == 1 and key.isascii() and key.isalnum() and key not in used_keys:
            keys[name] = key
            used_keys.add(key)
    spare = (key for key in _SPARE_KEYS if key not in used_keys)
    for name in classes:
        if name not in keys:
            keys[name] = next(spare, None)
            if keys[name] is not None:
                used_keys.add(keys[name])
    return {name: keys[name] for name in classes}


def skip_keys(classes: Sequence[str]) -> list[str]:
    """Return the keys that skip a task: ``Escape``, and ``s`` unless a class uses it."""
    used = set(shortcut_keys(classes).values())
    return [key for key in SKIP_KEYS if key not in used]
