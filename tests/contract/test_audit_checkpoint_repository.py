"""Contract of the audit repository's checkpoint side (fake vs PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.compliance.adapters import PostgresAuditRepository
from services.compliance.checkpoints import leaves_of, make_checkpoint
from services.compliance.domain import AuditEntry, chain
from services.compliance.fakes import InMemoryAuditRepository
from schemas.compliance import AuditCheckpointSigned
from tests.contract.conftest import repository

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPENED = "io.fedstream.round.opened.v1"

audit_repo = repository(InMemoryAuditRepository, PostgresAuditRepository)


def entry(event_type: str) -> AuditEntry:
    return AuditEntry(uuid4(), event_type, "fedstream.rounds", f"c-{uuid4().hex[:8]}", 1, "registry", T0, "c" * 64)


async def test_rows_after_a_position_and_whether_any_are_not_checkpoint_events(audit_repo):
    head = await audit_repo.lock_head()
    base = head.seq if head else 0
    opened = chain(head, entry(OPENED))
    await audit_repo.append(opened)
    signed = chain(opened, entry(AuditCheckpointSigned.TYPE))
    await audit_repo.append(signed)
    assert await audit_repo.rows_after(base) == [opened, signed]
    assert await audit_repo.rows_after(base + 1) == [signed]
    assert await audit_repo.has_rows_after(base, other_than=AuditCheckpointSigned.TYPE)
    assert not await audit_repo.has_rows_after(base + 1, other_than=AuditCheckpointSigned.TYPE)


async def test_a_checkpoint_is_stored_once_and_becomes_the_latest(audit_repo):
    head = await audit_repo.lock_head()
    row = chain(head, entry(OPENED))
    await audit_repo.append(row)
    latest = await audit_repo.lock_latest_checkpoint()
    previous = latest.tree_size if latest else 0
    leaves = leaves_of(["0" * 64] * row.seq)  # the contract is about storage, not about which rows were hashed
    cp = make_checkpoint(Ed25519PrivateKey.generate(), leaves, row.seq, previous, T0)
    assert await audit_repo.add_checkpoint(cp)
    assert not await audit_repo.add_checkpoint(cp)  # a second instance deciding the same checkpoint stores nothing
    assert await audit_repo.lock_latest_checkpoint() == cp
