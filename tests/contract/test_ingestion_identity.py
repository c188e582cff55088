"""Ingestion's identity projection, replay backstop and parking: the fake and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from fedstream.security.message_auth import NonceClaim
from services.ingestion.adapters import PostgresAdmissionRepository
from services.ingestion.fakes import InMemoryAdmissionRepository
from services.ingestion.identity import BaaView, ConsentView, KeyView
from schemas import events as ev
from tests.contract.conftest import repository

T0 = datetime(2026, 5, 1, tzinfo=UTC)
repo = repository(InMemoryAdmissionRepository, PostgresAdmissionRepository)


async def one_key(repo, key_id: str) -> KeyView | None:
    return (await repo.keys([key_id])).get(key_id)


async def use_nonce(repo, key_id: str, nonce: str, event_id, signed_at) -> bool:  # noqa: ANN001
    return event_id in await repo.use_nonces([NonceClaim(key_id, nonce, event_id, signed_at)])


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:8]}"  # the suite shares one database with running services


async def test_keys_are_projected_and_revocation_sticks(repo):
    key = KeyView(uuid4().hex, unique("p"), "org", "A" * 43)
    assert await one_key(repo, key.key_id) is None
    await repo.save_key(key)
    assert await one_key(repo, key.key_id) == key
    await repo.revoke_key(key.key_id)
    await repo.save_key(key)  # enrolled again: still revoked
    assert (await one_key(repo, key.key_id)).revoked


async def test_the_latest_consent_per_scope_wins(repo):
    p = unique("p")
    await repo.save_consent(ConsentView(p, "federated_training", "*", T0, True))
    await repo.save_consent(ConsentView(p, "federated_training", "f", T0, True))
    await repo.save_consent(ConsentView(p, "federated_training", "*", T0 + timedelta(days=1), False))
    got = sorted((await repo.consents_of([p]))[p], key=lambda c: c.scope)
    assert got == [ConsentView(p, "federated_training", "*", T0 + timedelta(days=1), False), ConsentView(p, "federated_training", "f", T0, True)]


async def test_baas_are_kept_per_organisation(repo):
    org = unique("org")
    assert await repo.baas([org]) == {}
    await repo.save_baa(BaaView(org, T0, True))
    await repo.save_baa(BaaView(org, T0, False))
    assert await repo.baas([org, unique("org")]) == {org: BaaView(org, T0, False)}


async def test_a_nonce_is_used_once_except_by_the_same_event(repo):
    key_id, first, second = uuid4().hex, uuid4(), uuid4()
    assert await use_nonce(repo, key_id, "n1", first, T0)
    assert await use_nonce(repo, key_id, "n1", first, T0)
    assert not await use_nonce(repo, key_id, "n1", second, T0)
    assert await use_nonce(repo, key_id, "n2", second, T0)
    assert await repo.forget_nonces(T0 + timedelta(seconds=1)) >= 2
    assert await use_nonce(repo, key_id, "n1", second, T0 + timedelta(seconds=2))  # forgotten: stale anyway


async def test_a_batch_looks_up_keys_and_consents_and_claims_nonces_at_once(repo):
    a, b = KeyView(uuid4().hex, unique("p"), "org", "A" * 43), KeyView(uuid4().hex, unique("p"), "org", "B" * 43)
    await repo.save_key(a)
    await repo.save_key(b)
    assert await repo.keys([a.key_id, b.key_id, uuid4().hex]) == {a.key_id: a, b.key_id: b}
    await repo.save_consent(ConsentView(a.participant_id, "federated_training", "*", T0, True))
    assert await repo.consents_of([a.participant_id, b.participant_id]) == {
        a.participant_id: [ConsentView(a.participant_id, "federated_training", "*", T0, True)]}
    key_id, first, replay, other = uuid4().hex, uuid4(), uuid4(), uuid4()
    claims = [NonceClaim(key_id, "n1", first, T0), NonceClaim(key_id, "n1", replay, T0), NonceClaim(key_id, "n2", other, T0)]
    assert await repo.use_nonces(claims) == {first, other}  # the same nonce twice in a batch: the first holds it
    assert await repo.use_nonces([]) == set()


def parked(federation: str, round_number: int) -> ev.UpdateSubmitted:
    return ev.UpdateSubmitted(
        source="participant/a", federation_id=federation, update_id=uuid4(), participant_id="a", round=round_number,
        base_model_version=0, update=ev.BlobRef(uri="file:///x", sha256="a" * 64, size=1), num_examples=1, train_loss=0.5,
    )


async def test_parked_submissions_come_back_once_whole(repo):
    f = unique("f")
    one, two, three = parked(f, 1), parked(f, 2), parked(f, 3)
    for i, event in enumerate((one, two, three)):
        await repo.park(event, T0 + timedelta(seconds=i))
    await repo.park(one, T0)  # parked again (redelivery): still once
    assert await repo.take_parked(f, 2) == [two]
    assert await repo.take_parked(f, 2) == []
    assert await repo.take_parked_up_to(f, 5) == [one, three]


async def test_parked_submissions_expire_by_age(repo):
    f = unique("f")
    old, new = parked(f, 1), parked(f, 1)
    await repo.park(old, T0)
    await repo.park(new, T0 + timedelta(seconds=60))
    assert old in await repo.take_parked_before(T0 + timedelta(seconds=30))
    assert await repo.take_parked(f, 1) == [new]
