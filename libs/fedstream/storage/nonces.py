"""The durable replay guard every receiver of signed messages keeps: one row per key and nonce.

A table of ``(key_id, nonce, event_id, signed_at)`` with the primary key ``(key_id, nonce)`` (ingestion's
and validation's). Claims are made for a whole batch in one statement. ``InMemoryNonces`` is the same
guard for the receivers' repository fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from fedstream.security.message_auth import NonceClaim


async def claim_nonces(conn: asyncpg.Connection, table: str, claims: Sequence[NonceClaim]) -> set[UUID]:
    """The event ids whose claim holds: the first use of a key's nonce, or again by the same event (a
    retried batch). ``table`` is the receiver's own (a constant of its adapter, never input)."""
    # One statement may not touch a row twice: a nonce repeated within the batch is claimed by its first
    # message only. On conflict, the no-op update makes RETURNING give the event that holds the nonce.
    first = list({(c.key_id, c.nonce): c for c in reversed(claims)}.values())
    if not first:
        return set()
    rows = await conn.fetch(
        f"INSERT INTO {table} (key_id, nonce, event_id, signed_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::timestamptz[]) "
        f"ON CONFLICT (key_id, nonce) DO UPDATE SET event_id = {table}.event_id RETURNING key_id, nonce, event_id",
        [c.key_id for c in first], [c.nonce for c in first], [c.event_id for c in first], [c.signed_at for c in first],
    )
    holder = {(r["key_id"], r["nonce"]): r["event_id"] for r in rows}
    return {c.event_id for c in claims if holder.get((c.key_id, c.nonce)) == c.event_id}


async def forget_nonces(conn: asyncpg.Connection, table: str, signed_before: datetime) -> int:
    """Prune nonces too old to matter (their messages are refused as stale); returns how many."""
    status = await conn.execute(f"DELETE FROM {table} WHERE signed_at < $1", signed_before)
    return int(status.split()[-1])


class InMemoryNonces:
    """The guard of a repository fake (mixed in): the same answers as ``claim_nonces`` on a table."""

    def __init__(self) -> None:
        self.nonces: dict[tuple[str, str], tuple[UUID, datetime]] = {}

    async def use_nonces(self, claims: Sequence[NonceClaim]) -> set[UUID]:
        held = set()
        for c in claims:
            holder, _ = self.nonces.setdefault((c.key_id, c.nonce), (c.event_id, c.signed_at))
            if holder == c.event_id:
                held.add(c.event_id)
        return held

    async def forget_nonces(self, signed_before: datetime) -> int:
        old = [k for k, (_, at) in self.nonces.items() if at < signed_before]
        for k in old:
            del self.nonces[k]
        return len(old)
