"""Contracts of the HE ports: the custody repository, aggregation's HE records and ingestion's HE view
(fake vs PostgreSQL), and the secret key store (in-memory fake vs the keyfile adapter)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from fedstream.security.keys import InMemoryKeyManager
from services.aggregation.adapters import PostgresAggregationRepository
from services.aggregation.fakes import InMemoryAggregationRepository
from services.ingestion.adapters import PostgresAdmissionRepository
from services.ingestion.domain import FederationView
from services.ingestion.fakes import InMemoryAdmissionRepository
from services.key_custody.adapters import KeyfileKeyStore, PostgresCustodyRepository
from services.key_custody.domain import CustodyFederation
from services.key_custody.fakes import InMemoryCustodyRepository, InMemoryKeyStore
from services.key_custody.ports import HeldKeys
from schemas.base import BlobRef, ParamSpec
from schemas.he import HeScheme, HeSpec
from tests.contract.conftest import repository

pytestmark = pytest.mark.integration
custody_repo = repository(InMemoryCustodyRepository, PostgresCustodyRepository)
aggregation_repo = repository(InMemoryAggregationRepository, PostgresAggregationRepository)
admission_repo = repository(InMemoryAdmissionRepository, PostgresAdmissionRepository)
PARAMS = (ParamSpec(name="0.weight", dtype="float32", shape=(1, 3)), ParamSpec(name="0.bias", dtype="float32", shape=(1,)))


def fid() -> str:
    return f"he-{uuid4().hex[:10]}"


async def test_custody_records_federations_and_decrypts_each_round_once(custody_repo):
    f = CustodyFederation(fid(), "c" * 64, 3, PARAMS, HeSpec(scheme=HeScheme.BFV, quantisation_bits=12))
    assert await custody_repo.federation(f.federation_id) is None
    await custody_repo.save_federation(f)
    await custody_repo.save_federation(CustodyFederation(f.federation_id, "d" * 64, 1, (), HeSpec()))  # first one stays
    assert await custody_repo.federation(f.federation_id) == f
    assert not await custody_repo.decrypted(f.federation_id, 1)
    assert await custody_repo.record_decryption(f.federation_id, 1, "a" * 64, "b" * 64, 3)
    assert not await custody_repo.record_decryption(f.federation_id, 1, "e" * 64, "f" * 64, 4)
    assert await custody_repo.decrypted(f.federation_id, 1) and not await custody_repo.decrypted(f.federation_id, 2)


async def test_aggregation_learns_the_public_context_after_the_federation(aggregation_repo):
    f = fid()
    assert await aggregation_repo.he_federation(f) is None
    await aggregation_repo.save_he_federation(f, "ckks", 353, 4096)
    pending = await aggregation_repo.he_federation(f)
    assert (pending.scheme, pending.length, pending.slots, pending.fingerprint) == ("ckks", 353, 4096, None)
    context = BlobRef(uri="file:///ctx", sha256="c" * 64, size=1_000_000, media_type="application/octet-stream")
    await aggregation_repo.set_he_context(f, "c" * 64, context)
    known = await aggregation_repo.he_federation(f)
    assert known.fingerprint == "c" * 64 and known.public_context == context


async def test_ingestion_keeps_a_federations_he_frame(admission_repo):
    view = FederationView(fid(), frozenset({"a"}), PARAMS, 1024, he=("bfv", 8192))
    await admission_repo.save_federation(view)
    assert await admission_repo.federation(view.federation_id) == view


@pytest.fixture(params=["fake", "keyfile"])
def key_store(request, tmp_path):
    return InMemoryKeyStore() if request.param == "fake" else KeyfileKeyStore(tmp_path, InMemoryKeyManager())


def test_a_key_store_keeps_the_first_keys_of_a_federation(key_store):
    first, second = HeldKeys("a" * 64, b"secret-1", b"public-1"), HeldKeys("b" * 64, b"secret-2", b"public-2")
    assert key_store.load("f") is None
    assert key_store.create("f", first) == first
    assert key_store.create("f", second) == first
    assert key_store.load("f") == first and key_store.load("g") is None
