from __future__ import annotations

from typing import Protocol
from uuid import UUID

from fedstream.privacy.mechanism import SampledGaussian
from services.privacy_accounting.domain import CentralCharge, Charge, FederationPolicy, Refusal


class LedgerRepository(Protocol):
    async def record(self, charge: Charge) -> bool:
        """Insert the charge; False if this update was already charged (idempotent by update id)."""

    async def record_refusal(self, refusal: Refusal) -> bool:
        """Insert the refusal; False if this update was already refused (idempotent by update id)."""

    async def decided(self, update_id: UUID) -> bool:
        """Whether this update was already charged or refused (a replay under another event id)."""

    async def save_policy(self, policy: FederationPolicy) -> None:
        """Keep a federation's budget; a federation's spec never changes, so the first one stays."""

    async def policy(self, federation_id: str) -> FederationPolicy | None: ...

    async def history(self, participant_id: str, dataset_id: str) -> list[SampledGaussian]:
        """Every mechanism charged to this participant × dataset, in any federation (any order: composition commutes).

        Serialises with other charges of the same participant × dataset until the transaction ends,
        so two instances can never both spend the last of a budget.
        """

    async def central_multipliers(self, federation_id: str, before_round: int) -> list[float]:
        """Noise multipliers of the federation's earlier central DP rounds."""

    async def record_central(self, charge: CentralCharge) -> bool:
        """Insert the round's central charge; False if that round was already recorded."""
