"""The audit chain as pure functions: how a row's hash is made, and how a chain is verified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What is recorded about one event; ``payload_sha256`` pins the exact bytes that were on the topic."""

    event_id: UUID
    event_type: str
    topic: str
    federation_id: str
    round: int | None
    source: str
    occurred_at: datetime
    payload_sha256: str


@dataclass(frozen=True)
class AuditRow:
    seq: int
    entry: AuditEntry
    prev_hash: str
    row_hash: str


def row_hash(seq: int, entry: AuditEntry, prev_hash: str) -> str:
    """SHA-256 over a canonical JSON of the row's content and the previous row's hash."""
    canonical = json.dumps(
        [
            seq, str(entry.event_id), entry.event_type, entry.topic, entry.federation_id, entry.round, entry.source,
            entry.occurred_at.isoformat(), entry.payload_sha256, prev_hash,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain(prev: AuditRow | None, entry: AuditEntry) -> AuditRow:
    seq, prev_hash = (1, GENESIS) if prev is None else (prev.seq + 1, prev.row_hash)
    return AuditRow(seq, entry, prev_hash, row_hash(seq, entry, prev_hash))


@dataclass(frozen=True)
class BrokenLink:
    seq: int
    problem: str


def verify(rows: Iterable[AuditRow], expected_head: tuple[int, str] | None = None) -> BrokenLink | None:
    """Walks the chain in order; the first broken link, or None. Detects modified, deleted, inserted and
    reordered rows; a truncated tail is detected against ``expected_head`` (a signed checkpoint)."""
    prev: AuditRow | None = None
    for row in rows:
        expected_seq = 1 if prev is None else prev.seq + 1
        if row.seq != expected_seq:
            return BrokenLink(row.seq, f"sequence jumps from {expected_seq - 1} to {row.seq} (rows deleted or inserted)")
        expected_prev = GENESIS if prev is None else prev.row_hash
        if row.prev_hash != expected_prev:
            return BrokenLink(row.seq, "prev_hash does not match the previous row (rows reordered, inserted or replaced)")
        if row_hash(row.seq, row.entry, row.prev_hash) != row.row_hash:
            return BrokenLink(row.seq, "row content does not match its hash (row modified)")
        prev = row
    if expected_head is not None:
        size, head = expected_head
        if prev is None or prev.seq < size:
            return BrokenLink((prev.seq if prev else 0) + 1, f"chain ends before the checkpoint's {size} rows (tail truncated)")
        if prev.seq == size and prev.row_hash != head:
            return BrokenLink(prev.seq, "head differs from the checkpoint")
    return None
