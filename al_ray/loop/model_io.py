"""Saving and loading a round's model, atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cloudpickle

from al_ray.errors import ResumeError

__all__ = ["load_model", "save_model"]


def save_model(model: object, path: Path) -> None:
    """Pickle ``model`` to ``path`` through a temporary file, so a kill leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            cloudpickle.dump(model, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def load_model(path: Path) -> object:
    """Load a model saved by :func:`save_model`."""
    try:
        with open(path, "rb") as stream:
            return cloudpickle.load(stream)
    except FileNotFoundError:
        raise ResumeError(
            f"the model file {path} of a completed round is missing; "
            "restore the run's output folder or start a new run"
        ) from None
