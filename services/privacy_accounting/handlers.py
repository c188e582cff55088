"""Thin handlers: keep each federation's budget, then charge or refuse every accepted update."""

from __future__ import annotations

from collections.abc import Callable

from fedstream.messaging.transaction import Transaction
from fedstream.privacy.budgets import STRICTEST
from services.privacy_accounting import domain
from services.privacy_accounting.domain import Accountant, Charge, FederationPolicy, Refusal
from services.privacy_accounting.ports import LedgerRepository
from schemas.base import derived_id
from schemas.events import BudgetExhausted, FederationCreated, PrivacyCharged, RoundAggregated, UpdateAccepted
from schemas.topics import PRIVACY

Tx = Transaction[LedgerRepository]


class PrivacyHandlers:
    def __init__(self, accountant: Accountant) -> None:
        self.accountant = accountant

    def table(self) -> dict[type, Callable]:
        return {
            FederationCreated: self.on_federation_created,
            UpdateAccepted: self.on_accepted,
            RoundAggregated: self.on_aggregated,
        }

    async def on_aggregated(self, event: RoundAggregated, tx: Tx) -> None:
        """The central DP mechanism's ε and δ go in the ledger too (seed: ε = 1.0 for aggregate statistics)."""
        if event.central_dp is None:
            return
        policy = await tx.repo.policy(event.federation_id)
        delta = policy.budget.delta if policy else STRICTEST.delta
        earlier = await tx.repo.central_multipliers(event.federation_id, event.round)
        await tx.repo.record_central(domain.central_charge(event, earlier, delta, self.accountant))

    async def on_federation_created(self, event: FederationCreated, tx: Tx) -> None:
        await tx.repo.save_policy(FederationPolicy.of(event.spec))

    async def on_accepted(self, event: UpdateAccepted, tx: Tx) -> None:
        if await tx.repo.decided(event.update_id):
            return  # a replay of an update already charged or refused: charge at most once, forward at most once
        policy = await tx.repo.policy(event.federation_id)
        history = await tx.repo.history(event.participant_id, event.privacy.dataset_id) if event.privacy else []
        decision = domain.decide(event, policy, history, self.accountant)
        if isinstance(decision, Refusal):
            if await tx.repo.record_refusal(decision):
                tx.emit(_exhausted(event, decision))
        elif await tx.repo.record(decision):
            tx.emit(_charged(event, decision))


def _charged(event: UpdateAccepted, charge: Charge) -> PrivacyCharged:
    return PrivacyCharged(
        event_id=derived_id(event.update_id, "charged"), source=PRIVACY, federation_id=event.federation_id,
        update_id=event.update_id, participant_id=event.participant_id, round=event.round,
        update=event.update, num_examples=event.num_examples, epsilon=charge.epsilon, delta=charge.delta,
        privacy=charge.params, accountant=None if charge.estimate is None else charge.estimate.accountant,  # type: ignore[arg-type]
        budget_epsilon=charge.budget_epsilon,
    )


def _exhausted(event: UpdateAccepted, refusal: Refusal) -> BudgetExhausted:
    return BudgetExhausted(
        event_id=derived_id(event.update_id, "budget_exhausted"), source=PRIVACY, federation_id=event.federation_id,
        update_id=event.update_id, participant_id=event.participant_id, round=event.round, dataset_id=refusal.dataset_id,
        reason=refusal.reason, detail=refusal.detail[:2000], epsilon_spent=refusal.epsilon_spent,
        epsilon_requested=refusal.epsilon_requested, budget_epsilon=refusal.budget.epsilon, delta=refusal.budget.delta,
    )
