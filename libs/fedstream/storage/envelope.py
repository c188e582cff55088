"""Envelope encryption at rest (AES-256-GCM) in front of any blob store.

A blob written for an owner (a participant's update) gets a fresh random data key; the bytes are sealed
with it (96-bit random nonce, AAD = the plaintext's SHA-256, so a sealed blob cannot be passed off as
another), and the data key is stored next to them wrapped by the owner's key in the key manager. The
event still carries the plaintext SHA-256 and size, which the reader verifies after decrypting; the
reference's URI fragment says where the sealed bytes are and what they hash to.

Destroying the owner's key (an erasure) makes every such blob unreadable: ``BlobShredded``. Blobs written
without an owner (released models and aggregates, which every participant and downstream consumer reads)
stay plaintext and content-addressed as before.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedstream.security.keys import KeyDestroyed, KeyManager, UnknownKey, open_key_manager
from fedstream.storage.blobs import (
    SAFETENSORS,
    BlobError,
    BlobIntegrityError,
    BlobStore,
    open_blob_store,
    sha256_hex,
    verify,
)
from schemas.base import BlobRef

if TYPE_CHECKING:
    from fedstream.settings import Endpoints

MAGIC = b"FSE1"
SEALED_MEDIA_TYPE = "application/vnd.fedstream.sealed"
_FRAGMENT = "#fse1:"
_NONCE = 12


class BlobShredded(BlobError):
    """The blob's owner key was destroyed (crypto-shredded by an erasure): its content is gone for good."""


def seal(plaintext: bytes, data_key: bytes, wrapped_key: bytes, digest: str) -> bytes:
    """``FSE1 | len(wrapped) | wrapped data key | nonce | AES-GCM(data key, plaintext, aad = FSE1 + sha256)``."""
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(data_key).encrypt(nonce, plaintext, MAGIC + digest.encode())
    return MAGIC + struct.pack(">H", len(wrapped_key)) + wrapped_key + nonce + sealed


def split(stored: bytes) -> tuple[bytes, bytes, bytes]:
    """The wrapped data key, the nonce and the ciphertext of a sealed blob."""
    if not stored.startswith(MAGIC) or len(stored) < 6:
        raise BlobIntegrityError("not a sealed blob")
    (n,) = struct.unpack(">H", stored[4:6])
    wrapped, rest = stored[6 : 6 + n], stored[6 + n :]
    if len(wrapped) != n or len(rest) < _NONCE + 16:
        raise BlobIntegrityError("sealed blob is truncated")
    return wrapped, rest[:_NONCE], rest[_NONCE:]


def unseal(stored: bytes, unwrap: Callable[[bytes], bytes], binding: str) -> bytes:
    """What ``seal`` sealed with ``binding`` as its last argument; the data key unwrapped by ``unwrap``.
    Raises ``BlobIntegrityError`` (not sealed, truncated), the key manager's errors, or ``InvalidTag``."""
    wrapped, nonce, ciphertext = split(stored)
    return AESGCM(unwrap(wrapped)).decrypt(nonce, ciphertext, MAGIC + binding.encode())


def is_sealed(ref: BlobRef) -> bool:
    return _FRAGMENT in ref.uri


class EnvelopeBlobStore:
    """A ``BlobStore`` that seals what an owner writes and opens it again on read, for any reader."""

    def __init__(self, inner: BlobStore, keys: KeyManager) -> None:
        self.inner, self.keys = inner, keys

    async def put(self, data: bytes, media_type: str = SAFETENSORS, owner: str | None = None) -> BlobRef:
        if owner is None:
            return await self.inner.put(data, media_type)
        digest = sha256_hex(data)
        data_key = AESGCM.generate_key(256)
        # Key manager calls may be file or network I/O; sealing a large tensor is CPU: both off the loop.
        wrapped = await asyncio.to_thread(self.keys.wrap, owner, data_key)
        stored = await asyncio.to_thread(seal, data, data_key, wrapped, digest)
        at = await self.inner.put(stored, SEALED_MEDIA_TYPE)
        return BlobRef(
            uri=f"{at.uri}{_FRAGMENT}{at.sha256}:{at.size}", sha256=digest, size=len(data), media_type=media_type
        )

    async def get(self, ref: BlobRef) -> bytes:
        if not is_sealed(ref):
            return await self.inner.get(ref)
        base, _, sealed_at = ref.uri.partition(_FRAGMENT)
        sealed_sha, _, sealed_size = sealed_at.partition(":")
        try:
            stored_ref = BlobRef(uri=base, sha256=sealed_sha, size=int(sealed_size), media_type=SEALED_MEDIA_TYPE)
        except ValueError:
            raise BlobIntegrityError(f"malformed sealed reference {ref.uri[-80:]}") from None
        stored = await self.inner.get(stored_ref)
        return verify(ref, await asyncio.to_thread(self._open, stored, ref.sha256))

    def _open(self, stored: bytes, digest: str) -> bytes:
        try:
            return unseal(stored, self.keys.unwrap, digest)
        except KeyDestroyed as exc:
            raise BlobShredded(f"blob {digest[:12]}: {exc}") from None
        except UnknownKey as exc:
            raise BlobIntegrityError(f"blob {digest[:12]}: {exc}") from None
        except InvalidTag:
            raise BlobIntegrityError(f"blob {digest[:12]} does not authenticate under its data key") from None


def blob_store_for(endpoints: Endpoints) -> BlobStore:
    """The blob store every process uses: sealed under the configured key manager when there is one."""
    inner = open_blob_store(endpoints.blob_store_url)
    if endpoints.key_manager_url is None:
        return inner
    return EnvelopeBlobStore(inner, open_key_manager(endpoints.key_manager_url))
