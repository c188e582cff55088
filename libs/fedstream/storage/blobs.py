"""Content-addressed blob store: the claim-check half of every tensor-carrying event.

Blobs are named by their SHA-256, written once, and verified on every read: a reader that gets bytes
whose hash differs from the reference gets ``BlobIntegrityError``, never the bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

from fedstream.storage.files import replace_atomically
from schemas.base import BlobRef

SAFETENSORS = "application/vnd.safetensors"


class BlobError(Exception):
    """Base of the blob store's errors."""


class BlobNotFound(BlobError):
    pass


class BlobIntegrityError(BlobError):
    """The stored bytes do not hash to the reference (tampering, truncation, corruption)."""


class BlobStore(Protocol):
    async def put(self, data: bytes, media_type: str = SAFETENSORS, owner: str | None = None) -> BlobRef:
        """Store ``data``; ``owner`` (a participant) asks for encryption under the owner's key, which only an
        ``EnvelopeBlobStore`` (fedstream.storage.envelope) provides: the plain stores here ignore it."""

    async def get(self, ref: BlobRef) -> bytes: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(ref: BlobRef, data: bytes) -> bytes:
    if len(data) != ref.size:
        raise BlobIntegrityError(f"blob {ref.sha256[:12]} has {len(data)} bytes, reference says {ref.size}")
    if sha256_hex(data) != ref.sha256:
        raise BlobIntegrityError(f"blob {ref.sha256[:12]} does not hash to its reference")
    return data


class InMemoryBlobStore:
    """Fake for unit tests of logic."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, data: bytes, media_type: str = SAFETENSORS, owner: str | None = None) -> BlobRef:
        digest = sha256_hex(data)
        self.blobs[digest] = bytes(data)
        return BlobRef(uri=f"memory://{digest}", sha256=digest, size=len(data), media_type=media_type)

    async def get(self, ref: BlobRef) -> bytes:
        try:
            return verify(ref, self.blobs[ref.sha256])
        except KeyError:
            raise BlobNotFound(ref.uri) from None


class FileBlobStore:
    """Local filesystem (the default): ``<root>/ab/abcdef…``; writes are atomic renames."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    async def put(self, data: bytes, media_type: str = SAFETENSORS, owner: str | None = None) -> BlobRef:
        digest = sha256_hex(data)
        path = self._path(digest)
        if not path.exists():
            await asyncio.to_thread(replace_atomically, path, data)
        return BlobRef(uri=path.as_uri(), sha256=digest, size=len(data), media_type=media_type)

    async def get(self, ref: BlobRef) -> bytes:
        # Read and hash off the event loop: hashing a large tensor would stall every other await.
        return await asyncio.to_thread(self._read_verified, ref)

    def _read_verified(self, ref: BlobRef) -> bytes:
        try:
            data = self._path(ref.sha256).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(ref.uri) from None
        return verify(ref, data)


class FsspecBlobStore:
    """Any fsspec URL (``s3://bucket/prefix`` with s3fs, ``memory://``…): S3-compatible stores plug in here."""

    def __init__(self, url: str) -> None:
        import fsspec  # imported here: only deployments that use it pay for it

        self.fs, self.prefix = fsspec.core.url_to_fs(url)
        self.url = url.rstrip("/")

    def _key(self, digest: str) -> str:
        return f"{self.prefix.rstrip('/')}/{digest[:2]}/{digest}"

    async def put(self, data: bytes, media_type: str = SAFETENSORS, owner: str | None = None) -> BlobRef:
        digest = sha256_hex(data)
        await asyncio.to_thread(self.fs.pipe_file, self._key(digest), data)
        return BlobRef(uri=f"{self.url}/{digest[:2]}/{digest}", sha256=digest, size=len(data), media_type=media_type)

    async def get(self, ref: BlobRef) -> bytes:
        try:
            data = await asyncio.to_thread(self.fs.cat_file, self._key(ref.sha256))
        except FileNotFoundError:
            raise BlobNotFound(ref.uri) from None
        return verify(ref, data)


def open_blob_store(url: str) -> BlobStore:
    """``file:///…`` → FileBlobStore; anything else fsspec understands → FsspecBlobStore."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileBlobStore(Path(url2pathname(parsed.path)))
    return FsspecBlobStore(url)


