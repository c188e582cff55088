"""`fedstream audit verify` against the database: stream the chain through the pure verifier."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.compliance.adapters import read_chain
from services.compliance.domain import AuditRow, BrokenLink, verify


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    head: str | None
    broken: BrokenLink | None


async def verify_database(database_url: str) -> VerifyResult:
    conn = await asyncpg.connect(database_url)
    try:
        rows: list[AuditRow] = [r async for r in read_chain(conn)]
    finally:
        await conn.close()
    return VerifyResult(len(rows), rows[-1].row_hash if rows else None, verify(rows))
