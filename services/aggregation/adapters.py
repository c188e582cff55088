"""PostgreSQL adapter of the aggregation repository (tables in infra/migrations/004_aggregation.sql)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from services.aggregation.domain import CentralPolicy, HeFederation, RoundState, RoundStatus
from services.aggregation.ports import StoredContribution
from schemas.base import BlobRef


class PostgresAggregationRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def open_round(self, state: RoundState) -> bool:
        status = await self.conn.execute(
            "INSERT INTO aggregation_rounds (federation_id, round, quorum, deadline, participants, status, base_model) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING",
            state.federation_id, state.round, state.quorum, state.deadline, list(state.participants), state.status.value,
            state.base_model.model_dump(mode="json") if state.base_model else None,
        )
        return status.endswith(" 1")

    async def lock_round(self, federation_id: str, round_number: int) -> RoundState | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM aggregation_rounds WHERE federation_id = $1 AND round = $2 FOR UPDATE", federation_id, round_number
        )
        if row is None:
            return None
        return RoundState(
            row["federation_id"], row["round"], row["quorum"], row["deadline"], tuple(row["participants"]),
            RoundStatus(row["status"]), row["received"],
            BlobRef.model_validate(row["base_model"], strict=False) if row["base_model"] else None,
        )

    async def add_contribution(self, federation_id: str, round_number: int, c: StoredContribution) -> bool:
        status = await self.conn.execute(
            "INSERT INTO aggregation_contributions (federation_id, round, participant_id, update_id, num_examples, blob) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            federation_id, round_number, c.participant_id, c.update_id, c.num_examples, c.blob.model_dump(mode="json"),
        )
        if not status.endswith(" 1"):
            return False
        await self.conn.execute(
            "UPDATE aggregation_rounds SET received = received + 1 WHERE federation_id = $1 AND round = $2",
            federation_id, round_number,
        )
        return True

    async def contributions(self, federation_id: str, round_number: int) -> list[StoredContribution]:
        rows = await self.conn.fetch(
            "SELECT participant_id, update_id, num_examples, blob FROM aggregation_contributions "
            "WHERE federation_id = $1 AND round = $2 ORDER BY participant_id",
            federation_id, round_number,
        )
        return [_contribution(r) for r in rows]

    async def set_status(self, federation_id: str, round_number: int, status: RoundStatus, closed_by: str | None, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE aggregation_rounds SET status = $3, closed_by = $4, closed_at = $5 WHERE federation_id = $1 AND round = $2",
            federation_id, round_number, status.value, closed_by, at,
        )

    async def due_rounds(self, now: datetime) -> list[tuple[str, int]]:
        rows = await self.conn.fetch(
            "SELECT federation_id, round FROM aggregation_rounds WHERE status = 'collecting' AND deadline <= $1 "
            "ORDER BY deadline FOR UPDATE SKIP LOCKED",
            now,
        )
        return [(r["federation_id"], r["round"]) for r in rows]

    async def save_policy(self, federation_id: str, p: CentralPolicy) -> None:
        await self.conn.execute(
            "INSERT INTO aggregation_policies (federation_id, noise_multiplier, clip_norm, adaptive, target_quantile, "
            "clipping_learning_rate) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            federation_id, p.noise_multiplier, p.clip_norm, p.adaptive, p.target_quantile, p.clipping_learning_rate,
        )

    async def policy(self, federation_id: str) -> CentralPolicy | None:
        row = await self.conn.fetchrow("SELECT * FROM aggregation_policies WHERE federation_id = $1", federation_id)
        if row is None:
            return None
        return CentralPolicy(row["noise_multiplier"], row["clip_norm"], row["adaptive"], row["target_quantile"],
                             row["clipping_learning_rate"])

    async def set_clip_norm(self, federation_id: str, clip_norm: float) -> None:
        await self.conn.execute(
            "UPDATE aggregation_policies SET clip_norm = $2 WHERE federation_id = $1", federation_id, clip_norm
        )


    async def park(self, federation_id: str, round_number: int, c: StoredContribution) -> None:
        await self.conn.execute(
            "INSERT INTO aggregation_parked (update_id, federation_id, round, participant_id, num_examples, blob) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            c.update_id, federation_id, round_number, c.participant_id, c.num_examples, c.blob.model_dump(mode="json"),
        )

    async def take_parked(self, federation_id: str, round_number: int) -> list[StoredContribution]:
        rows = await self.conn.fetch(
            "DELETE FROM aggregation_parked WHERE federation_id = $1 AND round = $2 "
            "RETURNING participant_id, update_id, num_examples, blob",
            federation_id, round_number,
        )
        return sorted((_contribution(r) for r in rows), key=lambda c: c.participant_id)

    async def save_he_federation(self, federation_id: str, scheme: str, length: int, slots: int) -> None:
        await self.conn.execute(
            "INSERT INTO aggregation_he_federations (federation_id, scheme, length, slots) VALUES ($1,$2,$3,$4) "
            "ON CONFLICT DO NOTHING",
            federation_id, scheme, length, slots,
        )

    async def set_he_context(self, federation_id: str, fingerprint: str, public_context: BlobRef) -> None:
        await self.conn.execute(
            "UPDATE aggregation_he_federations SET fingerprint = $2, public_context = $3 WHERE federation_id = $1",
            federation_id, fingerprint, public_context.model_dump(mode="json"),
        )

    async def he_federation(self, federation_id: str) -> HeFederation | None:
        row = await self.conn.fetchrow("SELECT * FROM aggregation_he_federations WHERE federation_id = $1", federation_id)
        if row is None:
            return None
        context = BlobRef.model_validate(row["public_context"], strict=False) if row["public_context"] else None
        return HeFederation(row["scheme"], row["length"], row["slots"], row["fingerprint"], context)


def _contribution(r: asyncpg.Record) -> StoredContribution:
    blob = BlobRef.model_validate(r["blob"], strict=False)
    return StoredContribution(
        update_id=UUID(str(r["update_id"])), participant_id=r["participant_id"], num_examples=r["num_examples"],
        sha256=blob.sha256, blob=blob,
    )
