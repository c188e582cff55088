"""Signed Merkle checkpoints: the timer that makes them, and the checks that find tampering with them."""

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedstream.messaging.codec import decode
from fedstream.messaging.transaction import InMemoryTransactions
from services.compliance.checkpointer import (
    AuditChainBroken, Checkpointer, SigningKeyError, load_signing_key,
)
from services.compliance.checkpoints import (
    check_checkpoints, from_event, key_id_of, leaves_of, make_checkpoint, public_key_text, signature_valid, signed_body,
)
from services.compliance.domain import AuditEntry, chain
from services.compliance.fakes import InMemoryAuditRepository
from services.compliance.merkle import root, verify_consistency
from services.compliance.verify import compare_published, verify_trail
from schemas.compliance import AUDIT_TRAIL_ID, AuditCheckpointSigned

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(i: int, event_type: str = "io.fedstream.round.opened.v1") -> AuditEntry:
    return AuditEntry(uuid4(), event_type, "fedstream.rounds", "f", i, "registry", T0, f"{i:064x}")


def extend(rows, n, event_type="io.fedstream.round.opened.v1"):
    rows = list(rows)
    for _ in range(n):
        rows.append(chain(rows[-1] if rows else None, entry(len(rows) + 1, event_type)))
    return rows


def rechain(rows, start_index, changed_entry):
    """What a superuser who knows the hash recipe does: change a row and recompute every hash after it."""
    out = rows[:start_index]
    for i, r in enumerate(rows[start_index:], start_index):
        out.append(chain(out[-1] if out else None, changed_entry if i == start_index else r.entry))
    return out


def series(key, rows, sizes):
    """Checkpoints of ``rows`` at each size, each following the one before."""
    leaves, out, previous = leaves_of([r.row_hash for r in rows]), [], 0
    for k, size in enumerate(sizes):
        out.append(make_checkpoint(key, leaves, size, previous, T0 + timedelta(minutes=k)))
        previous = size
    return out


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


# --- making checkpoints ------------------------------------------------------------------------------------


def test_a_checkpoint_signs_the_tree_head_and_proves_it_extends_the_previous_one(key):
    rows = extend([], 13)
    old, new = series(key, rows, [5, 13])
    assert new.root_hash == root(leaves_of([r.row_hash for r in rows])).hex()
    assert signature_valid(new) and new.key_id == key_id_of(public_key_text(key))
    proof = [bytes.fromhex(p) for p in new.consistency_proof]
    assert verify_consistency(5, 13, bytes.fromhex(old.root_hash), bytes.fromhex(new.root_hash), proof)
    assert not signature_valid(replace(new, root_hash="0" * 64))
    assert not signature_valid(replace(new, tree_size=12))
    assert not signature_valid(replace(new, signed_at=new.signed_at + timedelta(microseconds=1)))


def test_the_signed_body_is_canonical_json_an_outsider_can_rebuild(key):
    body = signed_body(7, "ab" * 32, datetime(2026, 1, 1, 1, 0, tzinfo=UTC))
    assert body == (b'{"context":"fedstream.audit.checkpoint.v1","root_hash":"' + b"ab" * 32
                    + b'","signed_at":"2026-01-01T01:00:00.000000+00:00","tree_size":7}')


async def test_the_timer_signs_new_rows_once_and_not_its_own_checkpoint_events(key):
    repo = InMemoryAuditRepository()
    transactions = InMemoryTransactions(repo, consumer="compliance")
    checkpointer = Checkpointer(key, clock=lambda: T0)
    await checkpointer.tick(transactions)
    assert repo.checkpoints == [] and transactions.published == []  # nothing to sign yet

    repo.rows = extend([], 4)
    await checkpointer.tick(transactions)
    [published] = [decode(r) for r in transactions.published]
    assert isinstance(published, AuditCheckpointSigned) and published.federation_id == AUDIT_TRAIL_ID
    assert (published.tree_size, published.previous_size) == (4, 0)
    assert from_event(published) == repo.checkpoints[0]

    await checkpointer.tick(transactions)  # no new rows
    repo.rows = extend(repo.rows, 1, AuditCheckpointSigned.TYPE)  # compliance audits its own event
    await checkpointer.tick(transactions)
    assert len(repo.checkpoints) == 1, "a checkpoint event alone must not cause another checkpoint"

    repo.rows = extend(repo.rows, 3)
    await checkpointer.tick(transactions)
    assert [(c.tree_size, c.previous_size) for c in repo.checkpoints] == [(4, 0), (8, 4)]
    assert check_checkpoints(repo.checkpoints, {key_id_of(public_key_text(key))}, [r.row_hash for r in repo.rows]) == []


async def test_a_second_instance_continues_the_series_of_the_first(key):
    repo = InMemoryAuditRepository()
    transactions = InMemoryTransactions(repo)
    repo.rows = extend([], 3)
    await Checkpointer(key).tick(transactions)
    repo.rows = extend(repo.rows, 2)
    await Checkpointer(key).tick(transactions)  # a fresh instance reads everything and checks the old root
    assert [(c.tree_size, c.previous_size) for c in repo.checkpoints] == [(3, 0), (5, 3)]


async def test_the_timer_refuses_to_sign_a_broken_chain(key):
    repo = InMemoryAuditRepository()
    rows = extend([], 5)
    rows[2] = replace(rows[2], entry=replace(rows[2].entry, source="attacker"))
    repo.rows = rows
    with pytest.raises(AuditChainBroken, match="row 3"):
        await Checkpointer(key).tick(InMemoryTransactions(repo))
    assert repo.checkpoints == []


async def test_the_timer_refuses_to_sign_over_rows_that_no_longer_match_the_last_checkpoint(key):
    repo = InMemoryAuditRepository()
    repo.rows = extend([], 4)
    await Checkpointer(key).tick(InMemoryTransactions(repo))
    repo.rows = extend(rechain(repo.rows, 1, entry(99)), 2)  # rewritten, then more appended
    with pytest.raises(AuditChainBroken, match="no longer match"):
        await Checkpointer(key).tick(InMemoryTransactions(repo))
    assert len(repo.checkpoints) == 1


# --- checking them ------------------------------------------------------------------------------------------


def kinds(problems):
    return [p.kind for p in problems]


def test_an_untouched_trail_and_its_checkpoints_verify(key):
    rows = extend([], 20)
    cps = series(key, rows, [1, 2, 8, 13, 20])
    result = verify_trail(rows, cps, {key_id_of(public_key_text(key))}, published=cps)
    assert result.intact and result.rows == 20 and result.checkpoints == 5


def test_a_truncated_tail_is_found_even_when_what_remains_chains(key):
    rows = extend([], 12)
    cps = series(key, rows, [5, 12])
    result = verify_trail(rows[:9], cps)
    assert result.broken is None  # the chain of what is left is intact
    [problem] = result.checkpoint_problems
    assert problem.kind == "truncated" and "truncated after row 9" in problem.problem and "10..12" in problem.problem


def test_a_rewritten_trail_with_recomputed_hashes_is_found_and_located(key):
    rows = extend([], 12)
    cps = series(key, rows, [3, 6, 12])
    forged = rechain(rows, 4, entry(77))  # row 5 changed, every later hash recomputed
    result = verify_trail(forged, cps)
    assert result.broken is None  # the chain alone cannot see this
    assert kinds(result.checkpoint_problems) == ["rewritten", "rewritten"]
    assert "within 4..6" in result.checkpoint_problems[0].problem  # rows 1..3 still match their checkpoint


def test_forged_untrusted_missing_and_inconsistent_checkpoints_are_named(key):
    rows = extend([], 10)
    a, b, c = series(key, rows, [2, 5, 10])
    # b no longer extends a, nor c b
    assert kinds(check_checkpoints([a, replace(b, root_hash="1" * 64), c])) == ["forged", "inconsistent", "inconsistent"]
    other = Ed25519PrivateKey.generate()
    assert kinds(check_checkpoints([a, b, c], {key_id_of(public_key_text(other))})) == ["untrusted"] * 3
    assert kinds(check_checkpoints([a, c])) == ["missing"]  # the middle one was deleted
    # an attacker re-signing a rewritten history with their own key is untrusted and breaks the series
    forged = series(other, rechain(rows, 0, entry(66)), [2, 5])[1]
    assert kinds(check_checkpoints([a, forged, c], {key_id_of(public_key_text(key))})) == ["untrusted", "inconsistent", "inconsistent"]


def test_an_outsider_verifies_the_published_events_alone(key):
    rows = extend([], 9)
    events = [AuditCheckpointSigned.model_validate_json(
        AuditCheckpointSigned(**{**e.model_dump(), "event_id": uuid4()}).model_dump_json()
    ) for e in (_event(cp) for cp in series(key, rows, [4, 9]))]
    trusted = {key_id_of(public_key_text(key))}
    assert check_checkpoints([from_event(e) for e in events], trusted) == []
    tampered = events[1].model_copy(update={"root_hash": "2" * 64})
    assert kinds(check_checkpoints([from_event(events[0]), from_event(tampered)], trusted)) == ["forged", "inconsistent"]


def _event(cp):
    from services.compliance.checkpoints import to_event

    return to_event(cp, "compliance")


def test_checkpoints_deleted_from_the_database_are_found_against_the_published_ones(key):
    rows = extend([], 10)
    cps = series(key, rows, [4, 10])
    [problem] = compare_published(cps[:1], cps)
    assert problem.kind == "missing" and problem.tree_size == 10
    result = verify_trail(rows[:4], cps[:1], published=cps)  # tail and its checkpoint both removed
    assert "truncated" in kinds(result.checkpoint_problems)


# --- the key -----------------------------------------------------------------------------------------------


def test_the_key_is_created_once_owner_only_and_reused(tmp_path):
    path = tmp_path / "keys" / "audit.pem"
    key = load_signing_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert public_key_text(load_signing_key(path)) == public_key_text(key)
    os.chmod(path, 0o644)
    with pytest.raises(SigningKeyError, match="readable by others"):
        load_signing_key(path)


async def test_the_timer_refuses_to_sign_when_rows_it_read_vanished(key):
    repo = InMemoryAuditRepository()
    repo.rows = extend([], 6)
    checkpointer = Checkpointer(key)
    await checkpointer.tick(InMemoryTransactions(repo))
    repo.rows = extend(repo.rows[:4], 3)  # tail cut and regrown (e.g. the database restored to an earlier point)
    with pytest.raises(AuditChainBroken, match="row 6 vanished or changed"):
        await checkpointer.tick(InMemoryTransactions(repo))
    assert len(repo.checkpoints) == 1
