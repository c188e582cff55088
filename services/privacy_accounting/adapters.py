from __future__ import annotations

import asyncpg

from services.privacy_accounting.domain import Charge


class PostgresLedgerRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def record(self, c: Charge) -> bool:
        status = await self.conn.execute(
            "INSERT INTO privacy_ledger (update_id, federation_id, participant_id, round, mechanism, epsilon, delta, charged_at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT (update_id) DO NOTHING",
            c.update_id, c.federation_id, c.participant_id, c.round, c.mechanism, c.epsilon, c.delta, c.charged_at,
        )
        return status.endswith(" 1")
