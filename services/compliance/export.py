"""Data portability (GDPR art. 20): everything held about a participant, as one JSON bundle.

Like erasure, the export finds the participant's rows by scanning every table (so tables other services
add are included without being listed here), plus the audit trail rows recorded under its pseudonym.
A short summary up front answers the usual questions: which federations and rounds, how much ε.
``erasure`` says whether an erasure of the participant is still waiting for its key to be destroyed; once it
is, nothing links the participant to anything any more, and the export is empty.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from fedstream.security.keys import KeyManager
from schemas.base import utcnow
from services.compliance.erasure import id_pattern
from services.compliance.erasure_adapters import CATALOGUE, quote
from schemas.topics import PARTICIPANT

FORMAT = "fedstream.participant-export.v1"


async def export_participant(conn: asyncpg.Connection, participant_id: str, keys: KeyManager | None = None) -> dict[str, Any]:
    async with conn.transaction(readonly=True, isolation="repeatable_read"):  # one consistent snapshot
        tables = await _matching_rows(conn, participant_id)
        audit = await _audit_rows(conn, participant_id, keys)
    if audit:
        tables["audit_trail"] = audit
    return {
        "format": FORMAT,
        "participant_id": participant_id,
        "exported_at": utcnow().isoformat(),
        "summary": summary(tables),
        "erasure": erasure_state(tables),
        "tables": tables,
    }


def erasure_state(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """An erasure committed but its key not destroyed yet (the compliance service is about to)."""
    pending = tables.get("erasure_pending_keys", [])
    return {"shredding": "pending", "pseudonym": pending[0]["pseudonym"]} if pending else None


async def _matching_rows(conn: asyncpg.Connection, participant_id: str) -> dict[str, list[dict[str, Any]]]:
    names = sorted({(r["schema"], r["table"]) for r in await conn.fetch(CATALOGUE) if r["readable"]})
    out: dict[str, list[dict[str, Any]]] = {}
    for schema, table in names:
        rows = await conn.fetch(
            f"SELECT to_jsonb(x)::text AS row FROM {quote(schema)}.{quote(table)} AS x WHERE to_jsonb(x)::text ~ $1",
            id_pattern(participant_id),
        )
        if rows:
            out[table if schema == "public" else f"{schema}.{table}"] = [json.loads(r["row"]) for r in rows]
    return out


async def _audit_rows(conn: asyncpg.Connection, participant_id: str, keys: KeyManager | None) -> list[dict[str, Any]]:
    """The trail records a participant's own events under its pseudonym (never its id)."""
    if keys is None or not keys.key_ids(participant_id):  # no key: nothing was recorded under a pseudonym
        return []
    source = f"{PARTICIPANT}/{keys.pseudonym(participant_id)}"
    rows = await conn.fetch("SELECT to_jsonb(a)::text AS row FROM audit_trail AS a WHERE source = $1 ORDER BY seq", source)
    return [json.loads(r["row"]) for r in rows]


def summary(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    updates = tables.get("updates", [])
    ledger = tables.get("privacy_ledger", [])
    return {
        "federations": sorted({r["federation_id"] for rows in tables.values() for r in rows if "federation_id" in r}),
        "rounds": sorted({(r["federation_id"], r["round"]) for r in updates}),
        "updates_accepted": len(updates),
        "epsilon_spent": max((r["epsilon"] for r in ledger if r.get("epsilon") is not None), default=None),
        "tables": {name: len(rows) for name, rows in sorted(tables.items())},
    }
