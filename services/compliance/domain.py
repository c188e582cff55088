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
    seq: int  # the first row whose link does not verify
    problem: str  # what is wrong, in words that name the rows
    kind: str = "broken"  # modified | deleted | inserted | reordered | truncated


def verify(rows: Iterable[AuditRow], expected_head: tuple[int, str] | None = None) -> BrokenLink | None:
    """Walks the chain in order; the first broken link, or None. Detects modified, deleted, inserted and
    reordered rows; a truncated tail is detected against ``expected_head`` (a signed checkpoint)."""
    rows = list(rows)  # naming what went wrong looks around the broken link
    prev: AuditRow | None = None
    for i, row in enumerate(rows):
        expected_seq = 1 if prev is None else prev.seq + 1
        if row.seq > expected_seq:
            missing = str(expected_seq) if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
            return BrokenLink(row.seq, f"row(s) {missing} deleted: sequence jumps from {expected_seq - 1} to {row.seq}", "deleted")
        if row.seq < expected_seq:
            return BrokenLink(row.seq, f"row {row.seq} inserted: sequence repeats after row {expected_seq - 1}", "inserted")
        if row.prev_hash != (GENESIS if prev is None else prev.row_hash):
            return diagnose_link(rows, i)
        if row_hash(row.seq, row.entry, row.prev_hash) != row.row_hash:
            return BrokenLink(row.seq, f"row {row.seq} modified: its content does not match its hash", "modified")
        prev = row
    if expected_head is not None:
        size, head = expected_head
        if prev is None or prev.seq < size:
            last = prev.seq if prev else 0
            return BrokenLink(last + 1, f"tail truncated after row {last}: the checkpoint covers {size} rows", "truncated")
        if prev.seq == size and prev.row_hash != head:
            return BrokenLink(prev.seq, "head differs from the checkpoint", "modified")
    return None


def diagnose_link(rows: list[AuditRow], i: int) -> BrokenLink:
    """Row ``i`` does not chain to row ``i - 1``: say why, from where its ``prev_hash`` points."""
    row = rows[i]
    position = {r.row_hash: j for j, r in enumerate(rows)}
    j = position.get(row.prev_hash, -1 if row.prev_hash == GENESIS else None)
    if j is not None and j > i:
        return BrokenLink(row.seq, f"rows reordered: row {row.seq} chains to row {rows[j].seq}, which now comes after it", "reordered")
    if j is not None and j < i - 1:
        first, last = j + 2, i  # the rows (1-based positions) between the one it chains to and itself
        span = str(rows[first - 1].seq) if first == last else f"{rows[first - 1].seq}..{rows[last - 1].seq}"
        return BrokenLink(row.seq, f"row(s) {span} inserted: row {row.seq} chains to row {rows[j].seq if j >= 0 else 0}", "inserted")
    if i + 1 < len(rows) and i > 0 and rows[i + 1].prev_hash == rows[i - 1].row_hash:
        return BrokenLink(row.seq, f"row {row.seq} inserted: row {rows[i + 1].seq} chains past it to row {rows[i - 1].seq}", "inserted")
    if row_hash(row.seq, row.entry, row.prev_hash) == row.row_hash and i > 0:
        return BrokenLink(rows[i - 1].seq, f"row {rows[i - 1].seq} replaced: row {row.seq} chains to a row no longer in the trail", "modified")
    shift = _renumbered_by(row)
    if shift:
        return BrokenLink(row.seq, f"{shift} row(s) deleted before row {row.seq} (the rows after them were renumbered)", "deleted")
    return BrokenLink(row.seq, f"row {row.seq} modified or forged: neither its link nor its hash verify", "modified")


def _renumbered_by(row: AuditRow, limit: int = 10_000) -> int:
    """How far a genuine row was moved down by deleting rows before it and renumbering (0: it was not)."""
    for shift in range(1, limit + 1):
        if row_hash(row.seq + shift, row.entry, row.prev_hash) == row.row_hash:
            return shift
    return 0
