"""Writing a file so that a reader (or a crash) never sees half of it: a private temporary file in the
same directory (``mkstemp``: mode 0600), then one atomic rename or link into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_atomically(path: Path, data: bytes, *, durable: bool = False) -> None:
    """Put ``data`` at ``path``, replacing what was there; ``durable``: on disk before it is in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private_copy(path.parent, data, durable)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_once(path: Path, data: bytes) -> bool:
    """Create ``path`` (0600, on disk before it appears, in a 0700 directory if it makes one); False if it
    already exists: a link never overwrites, so two writers racing leave the first one's file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _private_copy(path.parent, data, durable=True)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _private_copy(directory: Path, data: bytes, durable: bool) -> Path:
    fd, name = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)
