"""Signed Merkle checkpoints of the audit trail, as pure functions: make one, check a series of them.

A checkpoint is the RFC 6962 tree head over the audit rows 1..tree_size (each leaf is a row's
``row_hash``), signed with the compliance service's Ed25519 key, plus the consistency proof from the
previous checkpoint. Checked against the rows they show modification by rewriting (a root that no
longer recomputes) and a truncated tail (a checkpoint larger than the trail); checked against each
other (signatures, an unbroken series, consistency proofs) they show the log only ever grew — which an
outsider can check from the published ``AuditCheckpointSigned`` events alone.
"""

from __future__ import annotations

from fedstream.security.signing import b64url, key_id_of, public_key_text, unb64url
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.compliance.merkle import consistency_proof, leaf_hash, prefix_roots, verify_consistency
from schemas.base import derived_id
from schemas.compliance import AUDIT_TRAIL_ID, CHECKPOINT_SIGNATURE_CONTEXT, AuditCheckpointSigned


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root_hash: str  # hex
    signed_at: datetime
    key_id: str
    public_key: str  # raw Ed25519 public key, base64url without padding
    signature: str  # base64url without padding
    previous_size: int
    consistency_proof: tuple[str, ...]  # hex, RFC 6962 PROOF(previous_size, D[tree_size])
    event_id: UUID


@dataclass(frozen=True)
class CheckpointProblem:
    tree_size: int
    kind: str  # forged | untrusted | missing | inconsistent | rewritten | truncated
    problem: str


# --- keys and signatures ---------------------------------------------------------------------


def timestamp(moment: datetime) -> str:
    """One exact string per instant (UTC, microseconds), however the datetime was written."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def signed_body(tree_size: int, root_hash: str, signed_at: datetime) -> bytes:
    """What the signature covers: RFC 8785 canonical JSON, so any JCS implementation rebuilds the bytes."""
    return rfc8785.dumps({
        "context": CHECKPOINT_SIGNATURE_CONTEXT, "tree_size": tree_size, "root_hash": root_hash,
        "signed_at": timestamp(signed_at),
    })


def signature_valid(cp: Checkpoint) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64url(cp.public_key))
        key.verify(unb64url(cp.signature), signed_body(cp.tree_size, cp.root_hash, cp.signed_at))
    except (InvalidSignature, ValueError):
        return False
    return key_id_of(cp.public_key) == cp.key_id


# --- making one ------------------------------------------------------------------------------


def make_checkpoint(
    key: Ed25519PrivateKey, leaves: Sequence[bytes], tree_size: int, previous_size: int, signed_at: datetime
) -> Checkpoint:
    """Sign the tree head over ``leaves[:tree_size]`` (leaf hashes), proving it extends ``previous_size``."""
    root_hash = prefix_roots(leaves, [tree_size])[tree_size].hex()
    public_key = public_key_text(key)
    return Checkpoint(
        tree_size=tree_size, root_hash=root_hash, signed_at=signed_at, key_id=key_id_of(public_key),
        public_key=public_key, signature=b64url(key.sign(signed_body(tree_size, root_hash, signed_at))),
        previous_size=previous_size,
        consistency_proof=tuple(p.hex() for p in consistency_proof(leaves, previous_size, tree_size)),
        event_id=derived_id("audit-checkpoint", tree_size),
    )


def leaves_of(row_hashes: Sequence[str]) -> list[bytes]:
    """Leaf hashes of the audit rows: each row's chained ``row_hash`` is the entry."""
    return [leaf_hash(bytes.fromhex(h)) for h in row_hashes]


def to_event(cp: Checkpoint, source: str) -> AuditCheckpointSigned:
    return AuditCheckpointSigned(
        event_id=cp.event_id, source=source, federation_id=AUDIT_TRAIL_ID, tree_size=cp.tree_size,
        root_hash=cp.root_hash, signed_at=cp.signed_at, key_id=cp.key_id, public_key=cp.public_key,
        signature=cp.signature, previous_size=cp.previous_size, consistency_proof=cp.consistency_proof,
    )


def from_event(event: AuditCheckpointSigned) -> Checkpoint:
    return Checkpoint(
        event.tree_size, event.root_hash, event.signed_at, event.key_id, event.public_key, event.signature,
        event.previous_size, tuple(event.consistency_proof), event.event_id,
    )


# --- checking a series -----------------------------------------------------------------------


def check_checkpoints(
    checkpoints: Sequence[Checkpoint],
    trusted_key_ids: Collection[str] | None = None,
    row_hashes: Sequence[str] | None = None,
) -> list[CheckpointProblem]:
    """Every problem with a series of checkpoints, oldest first.

    Without ``row_hashes`` (an outsider holding only the published events) this checks signatures,
    trusted keys, that no checkpoint is missing from the series and that each extends the one before.
    With them it also recomputes every root and compares every size with the trail's length.
    """
    ordered = sorted(checkpoints, key=lambda c: c.tree_size)
    problems = _series_problems(ordered, trusted_key_ids)
    if row_hashes is not None:
        problems += _trail_problems(ordered, row_hashes)
    return problems


def _series_problems(ordered: Sequence[Checkpoint], trusted: Collection[str] | None) -> list[CheckpointProblem]:
    problems: list[CheckpointProblem] = []
    previous: Checkpoint | None = None
    for cp in ordered:
        at = f"checkpoint of {cp.tree_size} rows signed {timestamp(cp.signed_at)}"
        if not signature_valid(cp):
            problems.append(CheckpointProblem(cp.tree_size, "forged", f"{at}: signature does not verify"))
        elif trusted is not None and cp.key_id not in trusted:
            problems.append(CheckpointProblem(cp.tree_size, "untrusted", f"{at}: signed by untrusted key {cp.key_id}"))
        expected_previous = previous.tree_size if previous else 0
        if cp.previous_size != expected_previous:
            problems.append(CheckpointProblem(
                cp.tree_size, "missing",
                f"{at}: follows a checkpoint of {cp.previous_size} rows, but the one before it covers {expected_previous} "
                "(checkpoints deleted or inserted)",
            ))
        elif previous is not None and not _extends(previous, cp):
            problems.append(CheckpointProblem(
                cp.tree_size, "inconsistent",
                f"{at}: does not extend the checkpoint of {previous.tree_size} rows (history rewritten between them)",
            ))
        previous = cp
    return problems


def _extends(previous: Checkpoint, cp: Checkpoint) -> bool:
    try:
        proof = [bytes.fromhex(p) for p in cp.consistency_proof]
        return verify_consistency(
            previous.tree_size, cp.tree_size, bytes.fromhex(previous.root_hash), bytes.fromhex(cp.root_hash), proof
        )
    except ValueError:
        return False


def _trail_problems(ordered: Sequence[Checkpoint], row_hashes: Sequence[str]) -> list[CheckpointProblem]:
    rows = len(row_hashes)
    try:
        roots = prefix_roots(leaves_of(row_hashes), [cp.tree_size for cp in ordered])
    except ValueError:  # a stored row_hash that is not hex: that row was modified
        return [CheckpointProblem(0, "rewritten", "a row_hash is not a SHA-256 hex digest (row modified)")]
    problems: list[CheckpointProblem] = []
    last_good = 0
    for cp in ordered:
        at = f"checkpoint of {cp.tree_size} rows signed {timestamp(cp.signed_at)}"
        if cp.tree_size > rows:
            problems.append(CheckpointProblem(
                cp.tree_size, "truncated",
                f"tail truncated after row {rows}: the {at} covers rows up to {cp.tree_size}, "
                f"so rows {rows + 1}..{cp.tree_size} are missing",
            ))
            break  # every later checkpoint is larger still: one finding says it
        if roots[cp.tree_size].hex() != cp.root_hash:
            problems.append(CheckpointProblem(
                cp.tree_size, "rewritten",
                f"rows rewritten within {last_good + 1}..{cp.tree_size}: they no longer match the {at}"
                + (f" (rows 1..{last_good} still match their checkpoint)" if last_good else ""),
            ))
        else:
            last_good = cp.tree_size
    return problems
