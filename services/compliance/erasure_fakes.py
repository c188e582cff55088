"""In-memory stand-ins for the erasure's stores (unit tests of the procedure and the handler)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from schemas.compliance import ErasureCertified, LineageEntry
from services.compliance.erasure import APPEND_ONLY_TABLES, DELETED_TABLES, PendingShredding, id_pattern, rewrite_json


class InMemoryErasureStore:
    """Fake: tables as lists of JSON-able rows; the same rewriting rules as the real adapter."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        self.tables = tables
        self.certificates: list[ErasureCertified] = []
        self.pending: dict[str, str] = {}  # pseudonym → participant id, until its key is destroyed
        self.keys_destroyed_at: dict[str, datetime] = {}  # pseudonym → when

    async def federations(self, participant_id: str) -> tuple[str, ...]:
        rows = self.tables.get("participants", [])
        return tuple(sorted({r["federation_id"] for r in rows if r["participant_id"] == participant_id}))

    async def lineage(self, participant_id: str) -> tuple[LineageEntry, ...]:
        rows = self.tables.get("aggregation_contributions", [])
        rounds = sorted({(r["federation_id"], r["round"]) for r in rows if r["participant_id"] == participant_id})
        return tuple(LineageEntry(federation_id=f, round=n) for f, n in rounds)

    async def erase(self, participant_id: str, pseudonym: str) -> dict[str, int]:
        touched: dict[str, int] = {}
        for name, rows in self.tables.items():
            if name in APPEND_ONLY_TABLES:
                continue
            if name in DELETED_TABLES:
                kept = [r for r in rows if r.get("participant_id") != participant_id]
                touched[name], rows[:] = len(rows) - len(kept), kept
                continue
            for i, row in enumerate(rows):
                new = rewrite_json(row, participant_id, pseudonym)
                changed = sum(new[k] != v for k, v in row.items())  # the real store counts column values too
                if changed:
                    rows[i], touched[name] = new, touched.get(name, 0) + changed
        return touched

    async def residual(self, participant_id: str) -> tuple[str, ...]:
        pattern = re.compile(id_pattern(participant_id))
        return tuple(sorted(n for n, rows in self.tables.items() if any(pattern.search(json.dumps(r)) for r in rows)))

    async def unreadable(self) -> tuple[str, ...]:
        return ()

    async def record(self, certificate: ErasureCertified) -> None:
        if all(c.pseudonym != certificate.pseudonym for c in self.certificates):  # the table's UNIQUE(pseudonym)
            self.certificates.append(certificate)

    async def schedule_shredding(self, pseudonym: str, participant_id: str) -> None:
        self.pending.setdefault(pseudonym, participant_id)

    async def pending_shreddings(self, limit: int) -> tuple[PendingShredding, ...]:
        return tuple(PendingShredding(p, pid) for p, pid in sorted(self.pending.items())[:limit])

    async def shredded(self, pseudonym: str, at: datetime) -> None:
        self.pending.pop(pseudonym, None)
        self.keys_destroyed_at.setdefault(pseudonym, at)


class NoCoordination:
    async def scrub(self, participant_id: str) -> int:
        return 0
