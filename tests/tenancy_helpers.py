"""Test data for tenant isolation: enrolments, whatever else migration 014's table requires."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg


async def enrol(conn: asyncpg.Connection, participant_id: str, organisation: str) -> None:
    """An enrolment row: NOT NULL columns without a default (beyond the two this feature relies on) get a value."""
    required = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'participant_enrolments' "
        "AND is_nullable = 'NO' AND column_default IS NULL AND column_name NOT IN ('participant_id', 'organisation')"
    )
    filler = {"text": "x", "boolean": False, "integer": 0, "bigint": 0, "bytea": b"\0", "jsonb": {},
              "timestamp with time zone": datetime.now(UTC), "ARRAY": []}
    columns = ["participant_id", "organisation", *(r["column_name"] for r in required)]
    values = [participant_id, organisation, *(filler[r["data_type"]] for r in required)]
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await conn.execute(f"INSERT INTO participant_enrolments ({', '.join(columns)}) VALUES ({placeholders})", *values)
