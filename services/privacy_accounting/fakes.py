from __future__ import annotations

from uuid import UUID

from fedstream.privacy.mechanism import SampledGaussian
from services.privacy_accounting.domain import CentralCharge, Charge, FederationPolicy, Refusal, mechanism_of


class InMemoryLedgerRepository:
    def __init__(self) -> None:
        self.charges: dict[UUID, Charge] = {}
        self.refusals: dict[UUID, Refusal] = {}
        self.policies: dict[str, FederationPolicy] = {}
        self.central: dict[tuple[str, int], CentralCharge] = {}

    async def record(self, charge: Charge) -> bool:
        if charge.update_id in self.charges:
            return False
        self.charges[charge.update_id] = charge
        return True

    async def record_refusal(self, refusal: Refusal) -> bool:
        if refusal.update_id in self.refusals:
            return False
        self.refusals[refusal.update_id] = refusal
        return True

    async def decided(self, update_id: UUID) -> bool:
        return update_id in self.charges or update_id in self.refusals

    async def save_policy(self, policy: FederationPolicy) -> None:
        self.policies.setdefault(policy.federation_id, policy)

    async def policy(self, federation_id: str) -> FederationPolicy | None:
        return self.policies.get(federation_id)

    async def history(self, participant_id: str, dataset_id: str) -> list[SampledGaussian]:
        return [
            mechanism_of(c.params)
            for c in self.charges.values()
            if c.params is not None and c.participant_id == participant_id and c.params.dataset_id == dataset_id
        ]

    async def central_multipliers(self, federation_id: str, before_round: int) -> list[float]:
        return [c.noise_multiplier for (f, r), c in sorted(self.central.items()) if f == federation_id and r < before_round]

    async def record_central(self, charge: CentralCharge) -> bool:
        key = (charge.federation_id, charge.round)
        if key in self.central:
            return False
        self.central[key] = charge
        return True
