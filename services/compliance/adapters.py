"""PostgreSQL adapter of the audit trail (infra/migrations/007_compliance.sql)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import asyncpg

from services.compliance.domain import AuditEntry, AuditRow

APPEND_LOCK = 0x617564697431  # serialises appends across compliance instances
COLUMNS = "seq, event_id, event_type, topic, federation_id, round, source, occurred_at, payload_sha256, prev_hash, row_hash"


class PostgresAuditRepository:
    """One instance per transaction, so the head it remembers is this transaction's own: after the
    first lookup (under the advisory lock, held to commit) no other writer can move it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._head: AuditRow | None = None
        self._locked = False

    async def lock_head(self) -> AuditRow | None:
        if not self._locked:
            await self.conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
            row = await self.conn.fetchrow(f"SELECT {COLUMNS} FROM audit_trail ORDER BY seq DESC LIMIT 1")
            self._head, self._locked = (None if row is None else to_row(row)), True
        return self._head

    async def append(self, r: AuditRow) -> None:
        e = r.entry
        await self.conn.execute(
            f"INSERT INTO audit_trail ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            r.seq, e.event_id, e.event_type, e.topic, e.federation_id, e.round, e.source, e.occurred_at,
            e.payload_sha256, r.prev_hash, r.row_hash,
        )
        self._head = r  # only once the row is in: a failed insert leaves the head where it was


def to_row(r: asyncpg.Record) -> AuditRow:
    entry = AuditEntry(
        r["event_id"], r["event_type"], r["topic"], r["federation_id"], r["round"], r["source"], r["occurred_at"],
        r["payload_sha256"],
    )
    return AuditRow(r["seq"], entry, r["prev_hash"], r["row_hash"])


async def read_chain(conn: asyncpg.Connection, batch: int = 5000) -> AsyncIterator[AuditRow]:
    """The whole trail in sequence order, streamed (a server-side cursor needs a transaction)."""
    async with conn.transaction(readonly=True):
        async for r in conn.cursor(f"SELECT {COLUMNS} FROM audit_trail ORDER BY seq", prefetch=batch):
            yield to_row(r)
