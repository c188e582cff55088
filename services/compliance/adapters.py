"""PostgreSQL adapter of the audit trail (infra/migrations/007_compliance.sql)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import asyncpg

from services.compliance.domain import AuditEntry, AuditRow

_APPEND_LOCK = 0x617564697431  # serialises appends across compliance instances
COLUMNS = "seq, event_id, event_type, topic, federation_id, round, source, occurred_at, payload_sha256, prev_hash, row_hash"


class PostgresAuditRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock_head(self) -> AuditRow | None:
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
        row = await self.conn.fetchrow(f"SELECT {COLUMNS} FROM audit_trail ORDER BY seq DESC LIMIT 1")
        return None if row is None else to_row(row)

    async def append(self, r: AuditRow) -> None:
        e = r.entry
        await self.conn.execute(
            f"INSERT INTO audit_trail ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
            r.seq, e.event_id, e.event_type, e.topic, e.federation_id, e.round, e.source, e.occurred_at,
            e.payload_sha256, r.prev_hash, r.row_hash,
        )


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
