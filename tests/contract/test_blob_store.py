"""One contract, every BlobStore adapter: content addressing, integrity on read, missing blobs."""

from __future__ import annotations

import pytest

from fedstream.storage.blobs import (
    BlobIntegrityError,
    BlobNotFound,
    FileBlobStore,
    FsspecBlobStore,
    InMemoryBlobStore,
    open_blob_store,
    sha256_hex,
)
from schemas.base import BlobRef


@pytest.fixture(params=["memory-fake", "file", "fsspec-memory"])
def store(request, tmp_path):
    if request.param == "memory-fake":
        return InMemoryBlobStore()
    if request.param == "file":
        return open_blob_store(tmp_path.as_uri())
    return FsspecBlobStore(f"memory://fedstream-{tmp_path.name}")


async def test_put_is_content_addressed_and_get_returns_the_bytes(store):
    ref = await store.put(b"tensor bytes")
    assert ref.sha256 == sha256_hex(b"tensor bytes") and ref.size == 12
    assert await store.get(ref) == b"tensor bytes"
    assert (await store.put(b"tensor bytes")).sha256 == ref.sha256


async def test_a_reference_whose_hash_does_not_match_is_refused(store):
    ref = await store.put(b"original")
    lying = BlobRef(uri=ref.uri, sha256=sha256_hex(b"other!!!"), size=ref.size)
    with pytest.raises((BlobIntegrityError, BlobNotFound)):
        await store.get(lying)
    truncated = BlobRef(uri=ref.uri, sha256=ref.sha256, size=ref.size - 1)
    with pytest.raises(BlobIntegrityError):
        await store.get(truncated)


async def test_missing_blobs_are_named(store):
    with pytest.raises(BlobNotFound):
        await store.get(BlobRef(uri="x://missing", sha256="f" * 64, size=3))


async def test_file_store_detects_bytes_tampered_at_rest(tmp_path):
    store = FileBlobStore(tmp_path)
    ref = await store.put(b"weights")
    (tmp_path / ref.sha256[:2] / ref.sha256).write_bytes(b"weighty")
    with pytest.raises(BlobIntegrityError):
        await store.get(ref)
