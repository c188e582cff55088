"""PostgreSQL adapter: the registry's decision state plus its projected views."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.registry import projections
from services.registry.domain import FederationState
from schemas.base import BlobRef, Event
from schemas.federation import FederationSpec


class PostgresRegistryRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def create(self, s: FederationState) -> bool:
        status = await self.conn.execute(
            "INSERT INTO registry_state (federation_id, spec, current_round, latest_version, latest_model, completed) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            s.federation_id, s.spec.model_dump(mode="json"), s.current_round, s.latest_version,
            s.latest_model.model_dump(mode="json"), s.completed,
        )
        return status.endswith(" 1")

    async def lock(self, federation_id: str) -> FederationState | None:
        row = await self.conn.fetchrow("SELECT * FROM registry_state WHERE federation_id = $1 FOR UPDATE", federation_id)
        if row is None:
            return None
        return FederationState(
            row["federation_id"], FederationSpec.model_validate(row["spec"], strict=False), row["current_round"],
            row["latest_version"], BlobRef.model_validate(row["latest_model"], strict=False), row["completed"],
            frozenset(row["excluded"]),
        )

    async def save(self, s: FederationState) -> None:
        await self.conn.execute(
            "UPDATE registry_state SET current_round = $2, latest_version = $3, latest_model = $4, completed = $5, "
            "excluded = $6 WHERE federation_id = $1",
            s.federation_id, s.current_round, s.latest_version, s.latest_model.model_dump(mode="json"), s.completed,
            sorted(s.excluded),
        )

    async def project(self, event: Event) -> None:
        await projections.project(self.conn, event)

    async def round_opened_at(self, federation_id: str, round_number: int) -> datetime | None:
        return await self.conn.fetchval(
            "SELECT opened_at FROM rounds WHERE federation_id = $1 AND round = $2", federation_id, round_number
        )
