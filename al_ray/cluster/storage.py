"""Files named by a local path or a URI, read and written through pyarrow's file systems.

``pyarrow.fs.FileSystem.from_uri`` maps ``s3://``, ``gs://``, ``hdfs://``,
``abfs://`` and ``file://`` URIs (and absolute local paths) to a file system
and a path on it. Credentials come from each system's usual sources (AWS
environment variables or profile, Google application default credentials),
never from the config. An NFS mount is a local path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

from al_ray.errors import DataError

__all__ = [
    "OBJECT_STORE_SCHEMES",
    "is_object_store_uri",
    "local_copy",
    "open_location",
    "probe_readable",
    "probe_writable",
]

logger = logging.getLogger(__name__)

# URI schemes that pyarrow 25 opens as a file system shared across machines.
OBJECT_STORE_SCHEMES: frozenset[str] = frozenset({"s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss"})


def is_object_store_uri(value: str) -> bool:
    """Return whether ``value`` is a URI of a file system that every cluster node can reach."""
    return urllib.parse.urlparse(value).scheme.lower() in OBJECT_STORE_SCHEMES


def open_location(location: str):
    """Return ``(filesystem, path)`` for a URI or a local path; a relative path starts at the working directory."""
    import pyarrow
    import pyarrow.fs

    scheme = urllib.parse.urlparse(location).scheme
    # A one-letter scheme is a Windows drive; no scheme is a plain path.
    target = location if len(scheme) > 1 else str(Path(location).expanduser().resolve())
    try:
        return pyarrow.fs.FileSystem.from_uri(target)
    except (pyarrow.ArrowException, ValueError, OSError) as error:
        raise DataError(
            f"cannot open {location!r}: {error}; use a local path or a URI with one of the schemes "
            f"{', '.join(sorted(OBJECT_STORE_SCHEMES | {'file'}))}"
        ) from None


def probe_readable(location: str) -> str:
    """Read the first byte of the file at ``location``; return its size as text.

    Raises
    ------
    DataError
        When the file is missing, is a folder, or cannot be read.
    """
    import pyarrow
    import pyarrow.fs

    filesystem, path = open_location(location)
    try:
        info = filesystem.get_file_info(path)
        if info.type == pyarrow.fs.FileType.NotFound:
            raise DataError(f"{location!r} not found")
        if info.type != pyarrow.fs.FileType.File:
            raise DataError(f"{location!r} is a folder; name one file")
        with filesystem.open_input_stream(path) as stream:
            stream.read(1)
    except (pyarrow.ArrowException, OSError) as error:
        raise DataError(f"cannot read {location!r}: {error}") from None
    return f"{info.size:,} bytes"


def probe_writable(folder: str) -> str:
    """Create the folder if missing, write and delete a probe file in it; return what was done.

    Folders this function created are removed again, so the probe leaves the
    file system as it was.

    Raises
    ------
    DataError
        When the folder cannot be created or a file in it cannot be written or deleted.
    """
    import pyarrow
    import pyarrow.fs

    filesystem, path = open_location(folder)
    path = path.rstrip("/")
    created = _missing_parents(filesystem, path)
    probe = f"{path}/.al-ray-write-probe-{uuid.uuid4().hex[:8]}"
    try:
        filesystem.create_dir(path, recursive=True)
        with filesystem.open_output_stream(probe) as stream:
            stream.write(b"al-ray write probe\n")
        filesystem.delete_file(probe)
    except (pyarrow.ArrowException, OSError) as error:
        raise DataError(f"cannot write into {folder!r}: {error}") from None
    finally:
        for created_dir in created:
            with contextlib.suppress(pyarrow.ArrowException, OSError):
                filesystem.delete_dir(created_dir)
    return "created and deleted a probe file" + (" (the folder does not exist yet; a run creates it)" if created else "")


def _missing_parents(filesystem, path: str) -> list[str]:
    """Return ``path`` and its missing ancestors, deepest first."""
    import pyarrow.fs

    missing = []
    current = path
    while current and filesystem.get_file_info(current).type == pyarrow.fs.FileType.NotFound:
        missing.append(current)
        parent = current.rsplit("/", 1)[0]
        if parent == current:
            break
        current = parent
    return missing


@contextlib.contextmanager
def local_copy(location: str) -> Iterator[Path]:
    """Yield a local path of the file at ``location``; an object-store file is downloaded to a temporary folder.

    A local path is yielded as it is, a ``file://`` URI as its path. The download keeps the file name, so the
    suffix still names the format, and is deleted when the block ends.
    """
    import pyarrow
    import pyarrow.fs

    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        yield Path(urllib.parse.unquote(parsed.path))
        return
    if not is_object_store_uri(location):
        yield Path(location)
        return
    filesystem, path = open_location(location)
    with tempfile.TemporaryDirectory(prefix="al-ray-data-") as folder:
        target = Path(folder) / os.path.basename(path)
        try:
            pyarrow.fs.copy_files(path, str(target), source_filesystem=filesystem)
        except (pyarrow.ArrowException, OSError) as error:
            raise DataError(f"cannot download {location!r}: {error}") from None
        logger.info("downloaded %s to %s (%d bytes)", location, target, target.stat().st_size)
        yield target
