"""Validation's projection of participants' keys and its replay guard: the fake and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.validation.adapters import PostgresKeyRepository
from services.validation.fakes import InMemoryKeyRepository
from services.validation.ports import NonceClaim, ParticipantKey
from tests.contract.conftest import repository

T0 = datetime(2026, 5, 1, tzinfo=UTC)
repo = repository(InMemoryKeyRepository, PostgresKeyRepository)


async def one_key(repo, key_id: str) -> ParticipantKey | None:
    return (await repo.keys([key_id])).get(key_id)


async def use_nonce(repo, key_id: str, nonce: str, event_id, signed_at) -> bool:  # noqa: ANN001
    return event_id in await repo.use_nonces([NonceClaim(key_id, nonce, event_id, signed_at)])


def key(participant: str = "p") -> ParticipantKey:
    return ParticipantKey(uuid4().hex, f"{participant}-{uuid4().hex[:8]}", "org", "A" * 43)  # shared db: unique ids


async def test_keys_are_projected_and_revocation_sticks(repo):
    k, other = key(), key()
    assert await one_key(repo, k.key_id) is None
    await repo.save_key(k)
    await repo.save_key(other)
    assert await one_key(repo, k.key_id) == k
    await repo.revoke_key(k.key_id)
    await repo.save_key(k)  # enrolled again (a redelivered fact): still revoked
    assert (await one_key(repo, k.key_id)).revoked
    assert await one_key(repo, other.key_id) == other  # only that key


async def test_revoking_an_unknown_key_creates_nothing(repo):
    missing = uuid4().hex
    await repo.revoke_key(missing)
    assert await one_key(repo, missing) is None


async def test_a_nonce_is_used_once_except_by_the_same_event(repo):
    key_id, first, second = uuid4().hex, uuid4(), uuid4()
    assert await use_nonce(repo, key_id, "n1", first, T0)
    assert await use_nonce(repo, key_id, "n1", first, T0)  # a retried batch
    assert not await use_nonce(repo, key_id, "n1", second, T0)  # a replay
    assert await use_nonce(repo, key_id, "n2", second, T0)
    assert await use_nonce(repo, uuid4().hex, "n1", second, T0)  # per key
    assert await repo.forget_nonces(T0 + timedelta(seconds=1)) >= 3
    assert await use_nonce(repo, key_id, "n1", second, T0 + timedelta(seconds=2))  # forgotten: stale anyway


async def test_only_nonces_older_than_the_cutoff_are_forgotten(repo):
    key_id, event = uuid4().hex, uuid4()
    await use_nonce(repo, key_id, "old", event, T0)
    await use_nonce(repo, key_id, "new", event, T0 + timedelta(minutes=10))
    await repo.forget_nonces(T0 + timedelta(minutes=5))
    assert not await use_nonce(repo, key_id, "new", uuid4(), T0 + timedelta(minutes=10))
    assert await use_nonce(repo, key_id, "old", uuid4(), T0)


async def test_keys_and_nonces_of_a_batch_in_one_call_each(repo):
    a, b = key(), key()
    await repo.save_key(a)
    await repo.save_key(b)
    assert await repo.keys([a.key_id, b.key_id, uuid4().hex]) == {a.key_id: a, b.key_id: b}
    assert await repo.keys([]) == {}
    key_id, first, again, replay, other = uuid4().hex, uuid4(), uuid4(), uuid4(), uuid4()
    claims = [NonceClaim(key_id, "n1", first, T0), NonceClaim(key_id, "n1", replay, T0),  # the same nonce twice
              NonceClaim(key_id, "n2", other, T0)]
    assert await repo.use_nonces(claims) == {first, other}
    assert await repo.use_nonces([NonceClaim(key_id, "n1", first, T0), NonceClaim(key_id, "n3", again, T0)]) == {first, again}
    assert await repo.use_nonces([]) == set()
