"""Atomic file and directory writes: a reader never sees a half-written result."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rgsynth.errors import OutputExistsError


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


@contextlib.contextmanager
def staged_directory(destination: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a fresh staging folder beside ``destination``; move it into place on success.

    On any error the staging folder is removed and ``destination`` is left as it was. With
    ``replace``, an existing destination is swapped out only after the new one is complete.
    """
    destination = Path(destination)
    if destination.exists() and not replace:
        raise OutputExistsError(
            f"{destination}: already exists; choose another folder or pass --force to replace it"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.partial-"))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; give what mkdir() would
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if destination.exists():
        retired = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}.old-"))
        os.replace(destination, retired / "old")
        os.replace(staging, destination)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, destination)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
