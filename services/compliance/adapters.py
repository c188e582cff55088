"""PostgreSQL adapter of the audit trail (infra/migrations/007_compliance.sql)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import asyncpg

from services.compliance.checkpoints import Checkpoint
from services.compliance.domain import AuditEntry, AuditRow

APPEND_LOCK = 0x617564697431  # serialises appends across compliance instances
CHECKPOINT_LOCK = 0x617564697432  # one checkpointer at a time, so each checkpoint follows the newest one
CHECKPOINT_COLUMNS = (
    "tree_size, root_hash, signed_at, key_id, public_key, signature, previous_size, consistency_proof, event_id"
)
COLUMNS = "seq, event_id, event_type, topic, federation_id, round, source, occurred_at, payload_sha256, prev_hash, row_hash"


class PostgresAuditRepository:
    """One instance per transaction, so the head it remembers is this transaction's own: after the
    first lookup (under the advisory lock, held to commit) no other writer can move it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._head: AuditRow | None = None
        self._locked = False
        self._unwritten: list[AuditRow] = []  # appended, written in one statement by flush()

    async def lock_head(self) -> AuditRow | None:
        if not self._locked:
            await self.conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
            row = await self.conn.fetchrow(f"SELECT {COLUMNS} FROM audit_trail ORDER BY seq DESC LIMIT 1")
            self._head, self._locked = (None if row is None else to_row(row)), True
        return self._head

    async def append(self, r: AuditRow) -> None:
        """Chained here, written by ``flush`` (before the transaction commits, or before any read): a batch
        of events costs one statement, not a round trip each. Appending is each handler's last step, so no
        savepoint can roll back a row kept here (see ComplianceHandlers.on_any_event)."""
        self._unwritten.append(r)
        self._head = r

    async def flush(self) -> None:
        rows, self._unwritten = self._unwritten, []
        if rows:
            await self.conn.executemany(
                f"INSERT INTO audit_trail ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
                [(r.seq, r.entry.event_id, r.entry.event_type, r.entry.topic, r.entry.federation_id, r.entry.round,
                  r.entry.source, r.entry.occurred_at, r.entry.payload_sha256, r.prev_hash, r.row_hash) for r in rows],
            )

    async def rows_after(self, seq: int) -> list[AuditRow]:
        await self.flush()
        rows = await self.conn.fetch(f"SELECT {COLUMNS} FROM audit_trail WHERE seq > $1 ORDER BY seq", seq)
        return [to_row(r) for r in rows]

    async def has_rows_after(self, seq: int, other_than: str) -> bool:
        await self.flush()
        return await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM audit_trail WHERE seq > $1 AND event_type <> $2)", seq, other_than
        )

    async def lock_latest_checkpoint(self) -> Checkpoint | None:
        await self.conn.execute("SELECT pg_advisory_xact_lock($1)", CHECKPOINT_LOCK)
        row = await self.conn.fetchrow(
            f"SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1"
        )
        return None if row is None else to_checkpoint(row)

    async def add_checkpoint(self, cp: Checkpoint) -> bool:
        inserted = await self.conn.fetchval(
            f"INSERT INTO audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) "
            "ON CONFLICT (tree_size) DO NOTHING RETURNING tree_size",
            cp.tree_size, cp.root_hash, cp.signed_at, cp.key_id, cp.public_key, cp.signature, cp.previous_size,
            list(cp.consistency_proof), cp.event_id,
        )
        return inserted is not None


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


def to_checkpoint(r: asyncpg.Record) -> Checkpoint:
    return Checkpoint(
        r["tree_size"], r["root_hash"], r["signed_at"], r["key_id"], r["public_key"], r["signature"],
        r["previous_size"], tuple(r["consistency_proof"]), r["event_id"],
    )


async def read_checkpoints(conn: asyncpg.Connection) -> list[Checkpoint]:
    rows = await conn.fetch(f"SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY tree_size")
    return [to_checkpoint(r) for r in rows]


async def read_snapshot(conn: asyncpg.Connection, batch: int = 5000) -> tuple[list[AuditRow], list[Checkpoint]]:
    """The trail and its checkpoints as of one instant: a checkpoint committed between reading the two
    must not look like a checkpoint of rows that are missing."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        checkpoints = await read_checkpoints(conn)
        rows = [to_row(r) async for r in conn.cursor(f"SELECT {COLUMNS} FROM audit_trail ORDER BY seq", prefetch=batch)]
    return rows, checkpoints
