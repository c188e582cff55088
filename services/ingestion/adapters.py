"""PostgreSQL adapter of ingestion's admission state (infra/migrations/003_ingestion.sql)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from fedstream.security.message_auth import NonceClaim
from fedstream.storage.nonces import claim_nonces, forget_nonces

from services.ingestion.domain import FederationView, RoundView
from services.ingestion.identity import BaaView, ConsentView, KeyView
from schemas.base import ParamSpec
from schemas.events import UpdateSubmitted


class PostgresAdmissionRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def save_federation(self, f: FederationView) -> None:
        await self.conn.execute(
            "INSERT INTO ingestion_federations (federation_id, participants, params, max_update_bytes, active, he) "
            "VALUES ($1,$2,$3,$4,true,$5) ON CONFLICT (federation_id) DO NOTHING",
            f.federation_id, sorted(f.participants), [p.model_dump(mode="json") for p in f.params], f.max_update_bytes,
            list(f.he) if f.he else None,
        )

    async def federation(self, federation_id: str) -> FederationView | None:
        row = await self.conn.fetchrow("SELECT * FROM ingestion_federations WHERE federation_id = $1", federation_id)
        if row is None:
            return None
        params = tuple(ParamSpec.model_validate(p, strict=False) for p in row["params"])
        he = (str(row["he"][0]), int(row["he"][1])) if row["he"] else None  # migration 013
        return FederationView(row["federation_id"], frozenset(row["participants"]), params, row["max_update_bytes"], he)

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

    async def save_key(self, k: KeyView) -> None:
        await self.conn.execute(
            "INSERT INTO ingestion_keys (key_id, participant_id, organisation, public_key, revoked) VALUES ($1,$2,$3,$4,$5) "
            "ON CONFLICT (key_id) DO NOTHING",
            k.key_id, k.participant_id, k.organisation, k.public_key, k.revoked,
        )

    async def revoke_key(self, key_id: str) -> None:
        await self.conn.execute("UPDATE ingestion_keys SET revoked = true WHERE key_id = $1", key_id)

    async def keys(self, key_ids: Collection[str]) -> dict[str, KeyView]:
        rows = await self.conn.fetch("SELECT * FROM ingestion_keys WHERE key_id = ANY($1::text[])", list(key_ids))
        return {r["key_id"]: KeyView(**dict(r)) for r in rows}

    async def save_consent(self, c: ConsentView) -> None:
        await self.conn.execute(
            "INSERT INTO ingestion_consents (participant_id, purpose, scope, expires_at, granted) VALUES ($1,$2,$3,$4,$5) "
            "ON CONFLICT (participant_id, purpose, scope) DO UPDATE SET expires_at = excluded.expires_at, granted = excluded.granted",
            c.participant_id, c.purpose, c.scope, c.expires_at, c.granted,
        )

    async def consents_of(self, participant_ids: Collection[str]) -> dict[str, list[ConsentView]]:
        rows = await self.conn.fetch("SELECT * FROM ingestion_consents WHERE participant_id = ANY($1::text[])", list(participant_ids))
        consents: dict[str, list[ConsentView]] = {}
        for r in rows:
            consents.setdefault(r["participant_id"], []).append(ConsentView(**dict(r)))
        return consents

    async def save_baa(self, b: BaaView) -> None:
        await self.conn.execute(
            "INSERT INTO ingestion_baas (organisation, expires_at, active) VALUES ($1,$2,$3) "
            "ON CONFLICT (organisation) DO UPDATE SET expires_at = excluded.expires_at, active = excluded.active",
            b.organisation, b.expires_at, b.active,
        )

    async def baas(self, organisations: Collection[str]) -> dict[str, BaaView]:
        rows = await self.conn.fetch("SELECT * FROM ingestion_baas WHERE organisation = ANY($1::text[])", list(organisations))
        return {r["organisation"]: BaaView(**dict(r)) for r in rows}

    async def use_nonces(self, claims: Sequence[NonceClaim]) -> set[UUID]:
        return await claim_nonces(self.conn, "ingestion_nonces", claims)

    async def forget_nonces(self, signed_before: datetime) -> int:
        return await forget_nonces(self.conn, "ingestion_nonces", signed_before)

    async def park(self, event: UpdateSubmitted, parked_at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO ingestion_parked (update_id, federation_id, round, parked_at, event) VALUES ($1,$2,$3,$4,$5) "
            "ON CONFLICT (update_id) DO NOTHING",
            event.update_id, event.federation_id, event.round, parked_at, event.model_dump(mode="json"),
        )

    async def take_parked(self, federation_id: str, round_number: int) -> list[UpdateSubmitted]:
        return await self._take("federation_id = $1 AND round = $2", federation_id, round_number)

    async def take_parked_up_to(self, federation_id: str, round_number: int) -> list[UpdateSubmitted]:
        return await self._take("federation_id = $1 AND round <= $2", federation_id, round_number)

    async def take_parked_before(self, parked_before: datetime) -> list[UpdateSubmitted]:
        return await self._take("parked_at < $1", parked_before)

    async def _take(self, where: str, *args: object) -> list[UpdateSubmitted]:
        rows = await self.conn.fetch(f"DELETE FROM ingestion_parked WHERE {where} RETURNING parked_at, event", *args)
        rows = sorted(rows, key=lambda r: (r["parked_at"], r["event"]["update_id"]))
        return [UpdateSubmitted.model_validate_json(json.dumps(r["event"])) for r in rows]
