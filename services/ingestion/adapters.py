"""PostgreSQL adapter of ingestion's admission state (infra/migrations/003_ingestion.sql)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.ingestion.domain import FederationView, RoundView
from schemas.base import ParamSpec


class PostgresAdmissionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def save_federation(self, f: FederationView) -> None:
        await self.conn.execute(
            "INSERT INTO ingestion_federations (federation_id, participants, params, max_update_bytes, active) "
            "VALUES ($1,$2,$3,$4,true) ON CONFLICT (federation_id) DO NOTHING",
            f.federation_id, sorted(f.participants), [p.model_dump(mode="json") for p in f.params], f.max_update_bytes,
        )

    async def federation(self, federation_id: str) -> FederationView | None:
        row = await self.conn.fetchrow("SELECT * FROM ingestion_federations WHERE federation_id = $1", federation_id)
        if row is None:
            return None
        params = tuple(ParamSpec.model_validate(p, strict=False) for p in row["params"])
        return FederationView(row["federation_id"], frozenset(row["participants"]), params, row["max_update_bytes"])

    async def open_round(self, v: RoundView) -> None:
        await self.conn.execute(
            "UPDATE ingestion_rounds SET open = false WHERE federation_id = $1 AND round < $2", v.federation_id, v.round
        )
        await self.conn.execute(
            "INSERT INTO ingestion_rounds (federation_id, round, participants, deadline, open) VALUES ($1,$2,$3,$4,$5) "
            "ON CONFLICT (federation_id, round) DO NOTHING",
            v.federation_id, v.round, sorted(v.participants), v.deadline, v.open,
        )

    async def close_round(self, federation_id: str, round_number: int) -> None:
        await self.conn.execute(
            "UPDATE ingestion_rounds SET open = false WHERE federation_id = $1 AND round = $2", federation_id, round_number
        )

    async def close_federation(self, federation_id: str) -> None:
        await self.conn.execute("UPDATE ingestion_rounds SET open = false WHERE federation_id = $1", federation_id)
        await self.conn.execute("UPDATE ingestion_federations SET active = false WHERE federation_id = $1", federation_id)

    async def current_round(self, federation_id: str) -> RoundView | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM ingestion_rounds WHERE federation_id = $1 ORDER BY round DESC LIMIT 1", federation_id
        )
        if row is None:
            return None
        return RoundView(row["federation_id"], row["round"], frozenset(row["participants"]), row["deadline"], row["open"])

    async def admit(self, federation_id: str, round_number: int, participant_id: str, update_id: UUID) -> bool:
        status = await self.conn.execute(
            "INSERT INTO ingestion_admissions (federation_id, round, participant_id, update_id) VALUES ($1,$2,$3,$4) "
            "ON CONFLICT DO NOTHING",
            federation_id, round_number, participant_id, update_id,
        )
        return status.endswith(" 1")
