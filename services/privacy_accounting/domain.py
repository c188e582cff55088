"""The ledger's rules as pure functions: what an accepted update costs, and whether it may be counted.

ε is never taken from a participant: it is recomputed from the mechanism parameters the update
carries (σ, q, steps), composed with every earlier charge of the same participant on the same
dataset — across rounds and across federations — by two accountants, and the tighter valid bound is
charged. An update whose charge would take that cumulative ε over its federation's budget is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from fedstream.privacy.accountant import EpsilonEstimate
from fedstream.privacy.budgets import STRICTEST, Budget, budget_for
from fedstream.privacy.mechanism import SampledGaussian, compacted
from schemas.events import BudgetReason, DpParameters, RoundAggregated, UpdateAccepted
from schemas.federation import FederationSpec


@dataclass(frozen=True)
class Charge:
    """One ledger row. ``epsilon`` is the cumulative ε (participant × dataset) once this update counts."""

    update_id: UUID
    federation_id: str
    participant_id: str
    round: int
    mechanism: str
    epsilon: float | None
    delta: float | None
    charged_at: datetime
    params: DpParameters | None = None
    estimate: EpsilonEstimate | None = None
    budget_epsilon: float | None = None

    @property
    def dataset_id(self) -> str | None:
        return None if self.params is None else self.params.dataset_id


@dataclass(frozen=True)
class Refusal:
    update_id: UUID
    federation_id: str
    participant_id: str
    round: int
    dataset_id: str | None
    reason: BudgetReason
    detail: str
    epsilon_spent: float
    epsilon_requested: float | None
    budget: Budget
    refused_at: datetime


@dataclass(frozen=True)
class FederationPolicy:
    """What the ledger needs of a federation spec: its budget, and whether DP parameters are mandatory."""

    federation_id: str
    budget: Budget
    requires_dp: bool

    @classmethod
    def of(cls, spec: FederationSpec) -> "FederationPolicy":
        return cls(spec.federation_id, budget_for(spec.privacy), requires_dp=spec.local_dp)


class Accountant(Protocol):
    """ε of a composition at δ; ``fedstream.privacy.accountant.TwoAccountants`` is the real one."""

    def estimate(self, mechanisms: Sequence[SampledGaussian], delta: float) -> EpsilonEstimate: ...


def mechanism_of(params: DpParameters) -> SampledGaussian:
    return SampledGaussian(params.noise_multiplier, params.sample_rate, params.steps)


def budget_of(policy: FederationPolicy | None) -> Budget:
    # The spec has not reached the ledger (topics are not ordered with each other): hold the update to
    # the strictest seed budget rather than to none.
    return STRICTEST if policy is None else policy.budget


def plaintext(update: UpdateAccepted, policy: FederationPolicy | None) -> Charge | Refusal:
    """An update without DP: recorded with no ε claimed, unless its federation demands DP."""
    if policy is not None and policy.requires_dp:
        return Refusal(
            update.update_id, update.federation_id, update.participant_id, update.round, None,
            BudgetReason.MISSING_PARAMETERS, "this federation requires DP-SGD; the update carries no DP parameters",
            epsilon_spent=0.0, epsilon_requested=None, budget=policy.budget, refused_at=update.time,
        )
    return Charge(
        update.update_id, update.federation_id, update.participant_id, update.round,
        mechanism="none", epsilon=None, delta=None, charged_at=update.time,
    )


def decide(
    update: UpdateAccepted,
    policy: FederationPolicy | None,
    history: Sequence[SampledGaussian],
    accountant: Accountant,
) -> Charge | Refusal:
    """Charge ``update`` on top of ``history`` (the same participant × dataset), or refuse it."""
    params = update.privacy
    if params is None:
        return plaintext(update, policy)
    budget = budget_of(policy)
    after = accountant.estimate([*history, mechanism_of(params)], budget.delta)
    if after.epsilon > budget.epsilon:
        spent = accountant.estimate(history, budget.delta).epsilon if history else 0.0
        return Refusal(
            update.update_id, update.federation_id, update.participant_id, update.round, params.dataset_id,
            BudgetReason.EXHAUSTED,
            f"counting this update would spend ε = {after.epsilon:.4f} ({after.accountant}) on {params.dataset_id}, "
            f"over the budget ε = {budget.epsilon} at δ = {budget.delta} (spent so far: {spent:.4f})",
            epsilon_spent=spent, epsilon_requested=after.epsilon, budget=budget, refused_at=update.time,
        )
    return Charge(
        update.update_id, update.federation_id, update.participant_id, update.round,
        mechanism=params.mechanism, epsilon=after.epsilon, delta=budget.delta, charged_at=update.time,
        params=params, estimate=after, budget_epsilon=budget.epsilon,
    )


@dataclass(frozen=True)
class CentralCharge:
    """The central DP-FedAvg mechanism of one round, and the federation's cumulative ε after it."""

    federation_id: str
    round: int
    noise_multiplier: float
    clip_norm: float
    fraction_clipped: float
    estimate: EpsilonEstimate | None  # None: no noise, hence no guarantee to state
    delta: float
    charged_at: datetime

    @property
    def epsilon(self) -> float | None:
        return None if self.estimate is None else self.estimate.epsilon


def central_charge(
    event: RoundAggregated, earlier_multipliers: Sequence[float], delta: float, accountant: Accountant
) -> CentralCharge:
    """Each round is one Gaussian mechanism on the participants' clipped deltas; every selected participant
    takes part (sample rate 1), so rounds compose without amplification."""
    applied = event.central_dp
    assert applied is not None
    multipliers = [*earlier_multipliers, applied.noise_multiplier]
    estimate = None
    if all(m > 0 for m in multipliers):
        estimate = accountant.estimate(compacted(SampledGaussian(m, 1.0, 1) for m in multipliers), delta)
    return CentralCharge(event.federation_id, event.round, applied.noise_multiplier, applied.clip_norm,
                         applied.fraction_clipped, estimate, delta, event.time)
