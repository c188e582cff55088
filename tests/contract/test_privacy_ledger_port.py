"""Contract of the privacy ledger's DP port (fake vs PostgreSQL), and the SQL view a DPO reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from fedstream.privacy.accountant import EpsilonEstimate
from fedstream.privacy.budgets import Budget
from fedstream.privacy.mechanism import SampledGaussian
from services.privacy_accounting.adapters import PostgresLedgerRepository
from services.privacy_accounting.domain import Charge, FederationPolicy, Refusal
from services.privacy_accounting.fakes import InMemoryLedgerRepository
from schemas.events import BudgetReason, DpParameters
from tests.contract.conftest import repository

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ledger = repository(InMemoryLedgerRepository, PostgresLedgerRepository)


def ids() -> tuple[str, str, str]:
    suffix = uuid4().hex[:10]
    return f"f-{suffix}", f"p-{suffix}", f"d-{suffix}"


def dp_charge(federation: str, participant: str, dataset: str, round_number: int, sigma: float, epsilon: float) -> Charge:
    params = DpParameters(noise_multiplier=sigma, sample_rate=0.1, steps=10, clipping_norm=1.0, delta=1e-5, dataset_id=dataset)
    return Charge(uuid4(), federation, participant, round_number, "dp_sgd", epsilon, 1e-5, T0 + timedelta(seconds=round_number),
                  params=params, estimate=EpsilonEstimate(rdp=epsilon * 1.1, pld=epsilon, delta=1e-5), budget_epsilon=0.5)


async def test_policies_are_kept_once(ledger):
    f, _, _ = ids()
    assert await ledger.policy(f) is None
    await ledger.save_policy(FederationPolicy(f, Budget(0.5, 1e-5), requires_dp=True))
    await ledger.save_policy(FederationPolicy(f, Budget(1.0, 1e-5), requires_dp=False))
    assert await ledger.policy(f) == FederationPolicy(f, Budget(0.5, 1e-5), requires_dp=True)


async def test_history_composes_per_participant_and_dataset_across_federations(ledger):
    f, p, d = ids()
    other_federation = f + "-2"
    first, second = dp_charge(f, p, d, 1, 4.0, 0.1), dp_charge(other_federation, p, d, 1, 5.0, 0.2)
    assert await ledger.record(first) and await ledger.record(second)
    assert await ledger.record(dp_charge(f, p, d + "-other", 1, 6.0, 0.1))
    history = await ledger.history(p, d)
    assert sorted(history, key=lambda m: m.noise_multiplier) == [SampledGaussian(4.0, 0.1, 10), SampledGaussian(5.0, 0.1, 10)]
    assert await ledger.decided(first.update_id) and not await ledger.decided(uuid4())
    assert not await ledger.record(first)


async def test_refusals_are_recorded_once_and_count_as_decided(ledger):
    f, p, d = ids()
    refusal = Refusal(uuid4(), f, p, 3, d, BudgetReason.EXHAUSTED, "over", 0.4, 0.6, Budget(0.5, 1e-5), T0)
    assert await ledger.record_refusal(refusal)
    assert not await ledger.record_refusal(refusal)
    assert await ledger.decided(refusal.update_id)
    assert await ledger.history(p, d) == []


async def test_the_remaining_budget_view(pg_pool):
    f, p, d = ids()
    async with pg_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            repo = PostgresLedgerRepository(conn)
            await repo.save_policy(FederationPolicy(f, Budget(0.5, 1e-5), requires_dp=True))
            await repo.record(dp_charge(f, p, d, 1, 4.0, 0.1))
            await repo.record(dp_charge(f, p, d, 2, 4.0, 0.3))
            [row] = await conn.fetch("SELECT * FROM privacy_budget_remaining WHERE federation_id = $1", f)
            assert (row["charges"], row["last_round"], row["accountant"], row["exhausted"]) == (2, 2, "pld", False)
            assert row["epsilon_spent"] == 0.3 and abs(row["epsilon_remaining"] - 0.2) < 1e-12
            await repo.record_refusal(Refusal(uuid4(), f, p, 3, d, BudgetReason.EXHAUSTED, "over", 0.3, 0.6, Budget(0.5, 1e-5), T0))
            [row] = await conn.fetch("SELECT * FROM privacy_budget_remaining WHERE federation_id = $1", f)
            assert row["exhausted"]
        finally:
            await tx.rollback()
