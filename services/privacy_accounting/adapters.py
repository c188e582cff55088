from __future__ import annotations

from uuid import UUID

import asyncpg

from fedstream.privacy.budgets import Budget
from fedstream.privacy.mechanism import SampledGaussian
from services.privacy_accounting.domain import CentralCharge, Charge, FederationPolicy, Refusal


class PostgresLedgerRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def record(self, c: Charge) -> bool:
        p, e = c.params, c.estimate
        status = await self.conn.execute(
            "INSERT INTO privacy_ledger (update_id, federation_id, participant_id, round, mechanism, epsilon, delta, charged_at, "
            "dataset_id, noise_multiplier, sample_rate, steps, clipping_norm, reported_delta, epsilon_rdp, epsilon_pld, "
            "accountant, budget_epsilon) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18) ON CONFLICT (update_id) DO NOTHING",
            c.update_id, c.federation_id, c.participant_id, c.round, c.mechanism, c.epsilon, c.delta, c.charged_at,
            p and p.dataset_id, p and p.noise_multiplier, p and p.sample_rate, p and p.steps, p and p.clipping_norm,
            p and p.delta, e and e.rdp, e and e.pld, e and e.accountant, c.budget_epsilon,
        )
        return status.endswith(" 1")

    async def record_refusal(self, r: Refusal) -> bool:
        status = await self.conn.execute(
            "INSERT INTO privacy_refusals (update_id, federation_id, participant_id, round, dataset_id, reason, detail, "
            "epsilon_spent, epsilon_requested, budget_epsilon, budget_delta, refused_at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (update_id) DO NOTHING",
            r.update_id, r.federation_id, r.participant_id, r.round, r.dataset_id, r.reason.value, r.detail,
            r.epsilon_spent, r.epsilon_requested, r.budget.epsilon, r.budget.delta, r.refused_at,
        )
        return status.endswith(" 1")

    async def decided(self, update_id: UUID) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM privacy_ledger WHERE update_id = $1) "
                "OR EXISTS (SELECT 1 FROM privacy_refusals WHERE update_id = $1)",
                update_id,
            )
        )

    async def save_policy(self, policy: FederationPolicy) -> None:
        await self.conn.execute(
            "INSERT INTO privacy_federations (federation_id, budget_epsilon, budget_delta, requires_dp) "
            "VALUES ($1,$2,$3,$4) ON CONFLICT (federation_id) DO NOTHING",
            policy.federation_id, policy.budget.epsilon, policy.budget.delta, policy.requires_dp,
        )

    async def policy(self, federation_id: str) -> FederationPolicy | None:
        row = await self.conn.fetchrow("SELECT * FROM privacy_federations WHERE federation_id = $1", federation_id)
        if row is None:
            return None
        return FederationPolicy(row["federation_id"], Budget(row["budget_epsilon"], row["budget_delta"]), row["requires_dp"])

    async def history(self, participant_id: str, dataset_id: str) -> list[SampledGaussian]:
        # A transaction-scoped lock per participant × dataset: charges of one subject are decided one at
        # a time, whichever instance (or federation's partition) they arrive on.
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"privacy/{participant_id}/{dataset_id}")
        rows = await self.conn.fetch(
            "SELECT noise_multiplier, sample_rate, steps FROM privacy_ledger "
            "WHERE participant_id = $1 AND dataset_id = $2",
            participant_id, dataset_id,
        )
        return [SampledGaussian(r["noise_multiplier"], r["sample_rate"], r["steps"]) for r in rows]

    async def central_multipliers(self, federation_id: str, before_round: int) -> list[float]:
        rows = await self.conn.fetch(
            "SELECT noise_multiplier FROM privacy_central_ledger WHERE federation_id = $1 AND round < $2 ORDER BY round",
            federation_id, before_round,
        )
        return [r["noise_multiplier"] for r in rows]

    async def record_central(self, c: CentralCharge) -> bool:
        e = c.estimate
        status = await self.conn.execute(
            "INSERT INTO privacy_central_ledger (federation_id, round, noise_multiplier, clip_norm, fraction_clipped, "
            "epsilon, epsilon_rdp, epsilon_pld, delta, charged_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
            "ON CONFLICT DO NOTHING",
            c.federation_id, c.round, c.noise_multiplier, c.clip_norm, c.fraction_clipped, c.epsilon,
            None if e is None else e.rdp, None if e is None else e.pld, c.delta, c.charged_at,
        )
        return status.endswith(" 1")
