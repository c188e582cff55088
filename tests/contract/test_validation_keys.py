"""Validation's projection of participants' keys and its replay guard: the fake and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.validation.adapters import PostgresKeyRepository
from services.validation.fakes import InMemoryKeyRepository
from services.validation.ports import ParticipantKey
from tests.contract.conftest import repository

T0 = datetime(2026, 5, 1, tzinfo=UTC)
repo = repository(InMemoryKeyRepository, PostgresKeyRepository)


def key(participant: str = "p") -> ParticipantKey:
    return ParticipantKey(uuid4().hex, f"{participant}-{uuid4().hex[:8]}", "org", "A" * 43)  # shared db: unique ids


async def test_keys_are_projected_and_revocation_sticks(repo):
    k, other = key(), key()
    assert await repo.key(k.key_id) is None
    await repo.save_key(k)
    await repo.save_key(other)
    assert await repo.key(k.key_id) == k
    await repo.revoke_key(k.key_id)
    await repo.save_key(k)  # enrolled again (a redelivered fact): still revoked
    assert (await repo.key(k.key_id)).revoked
    assert await repo.key(other.key_id) == other  # only that key


async def test_revoking_an_unknown_key_creates_nothing(repo):
    missing = uuid4().hex
    await repo.revoke_key(missing)
    assert await repo.key(missing) is None


async def test_a_nonce_is_used_once_except_by_the_same_event(repo):
    key_id, first, second = uuid4().hex, uuid4(), uuid4()
    assert await repo.use_nonce(key_id, "n1", first, T0)
    assert await repo.use_nonce(key_id, "n1", first, T0)  # a retried batch
    assert not await repo.use_nonce(key_id, "n1", second, T0)  # a replay
    assert await repo.use_nonce(key_id, "n2", second, T0)
    assert await repo.use_nonce(uuid4().hex, "n1", second, T0)  # per key
    assert await repo.forget_nonces(T0 + timedelta(seconds=1)) >= 3
    assert await repo.use_nonce(key_id, "n1", second, T0 + timedelta(seconds=2))  # forgotten: stale anyway


async def test_only_nonces_older_than_the_cutoff_are_forgotten(repo):
    key_id, event = uuid4().hex, uuid4()
    await repo.use_nonce(key_id, "old", event, T0)
    await repo.use_nonce(key_id, "new", event, T0 + timedelta(minutes=10))
    await repo.forget_nonces(T0 + timedelta(minutes=5))
    assert not await repo.use_nonce(key_id, "new", uuid4(), T0 + timedelta(minutes=10))
    assert await repo.use_nonce(key_id, "old", uuid4(), T0)
