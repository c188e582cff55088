"""A participant's private key on disk: PEM (PKCS#8), readable by its owner only (0600).

Kept under the state dir (``<state>/keys/participants/<participant>.pem``); created once, reused after,
so a participant that restarts keeps its enrolled identity.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from fedstream.security.signing import generate_key


class KeyFileError(ValueError):
    """A key file that is not an Ed25519 private key, or that others can read."""


def keys_dir(state_dir: Path) -> Path:
    return state_dir / "keys" / "participants"


def key_path(directory: Path, participant_id: str) -> Path:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,62}", participant_id):  # schemas.base.Identifier: never a path
        raise KeyFileError(f"{participant_id!r} is not a participant id")
    return directory / f"{participant_id}.pem"


def load_key(path: Path) -> Ed25519PrivateKey:
    if path.stat().st_mode & 0o077:
        raise KeyFileError(f"{path} is readable by others; chmod 600 it")
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key")
    return key


def load_or_create(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at ``path``, or a new one written there (0600 from the start); True if it is new."""
    if path.exists():
        return load_key(path), False
    key = generate_key()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile: use that one
        return load_key(path), False
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key, True
