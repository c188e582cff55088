"""Encryption at rest: sealed blobs, verified after decryption, unreadable once their owner's key is shredded."""

from __future__ import annotations

import pytest

from fedstream.security.keys import InMemoryKeyManager
from fedstream.storage.blobs import BlobIntegrityError, FileBlobStore, InMemoryBlobStore, sha256_hex
from fedstream.storage.envelope import BlobShredded, EnvelopeBlobStore, is_sealed
from schemas.base import BlobRef

PLAINTEXT = b"tensor bytes of hospital-a " * 40


@pytest.fixture
def stores(tmp_path):
    inner, keys = FileBlobStore(tmp_path), InMemoryKeyManager()
    return inner, keys, EnvelopeBlobStore(inner, keys)


async def test_an_owners_blob_is_stored_encrypted_and_read_back_verified(stores, tmp_path):
    _, _, store = stores
    ref = await store.put(PLAINTEXT, owner="hospital-a")
    assert is_sealed(ref) and ref.sha256 == sha256_hex(PLAINTEXT) and ref.size == len(PLAINTEXT)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"tensor bytes" not in on_disk and b"hospital-a" not in on_disk
    assert await store.get(ref) == PLAINTEXT


async def test_the_same_bytes_of_two_owners_are_two_blobs(stores):
    _, keys, store = stores
    a, b = await store.put(PLAINTEXT, owner="hospital-a"), await store.put(PLAINTEXT, owner="hospital-b")
    assert a.uri != b.uri and a.sha256 == b.sha256
    keys.destroy("hospital-a")
    assert await store.get(b) == PLAINTEXT  # shredding one owner never takes another's blob with it


async def test_after_shredding_the_owner_key_reads_fail_with_a_named_error(stores):
    _, keys, store = stores
    ref = await store.put(PLAINTEXT, owner="hospital-a")
    keys.destroy("hospital-a")
    with pytest.raises(BlobShredded):
        await store.get(ref)


async def test_blobs_without_an_owner_stay_plaintext_and_content_addressed(stores):
    inner, _, store = stores
    ref = await store.put(b"released model")
    assert not is_sealed(ref) and await inner.get(ref) == b"released model"


async def test_a_reference_claiming_other_content_is_refused_after_decryption(stores):
    _, _, store = stores
    ref = await store.put(PLAINTEXT, owner="hospital-a")
    lying = BlobRef(uri=ref.uri, sha256=sha256_hex(b"other"), size=ref.size)
    with pytest.raises(BlobIntegrityError):
        await store.get(lying)  # the AAD binds the plaintext hash: it does not even decrypt


async def test_sealed_bytes_tampered_at_rest_are_detected(tmp_path):
    inner, keys = InMemoryBlobStore(), InMemoryKeyManager()
    store = EnvelopeBlobStore(inner, keys)
    ref = await store.put(PLAINTEXT, owner="hospital-a")
    ((digest, stored),) = inner.blobs.items()
    forged = bytearray(stored)
    forged[-20] ^= 1
    forged_ref = await inner.put(bytes(forged))
    moved = BlobRef(uri=ref.uri.replace(f"{digest}:", f"{forged_ref.sha256}:"), sha256=ref.sha256, size=ref.size)
    with pytest.raises(BlobIntegrityError):
        await store.get(moved)
