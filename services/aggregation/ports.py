"""What the aggregation handlers need from storage."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from services.aggregation.domain import CentralPolicy, HeFederation, RoundState, RoundStatus
from schemas.events import Contribution
from schemas.base import BlobRef


class StoredContribution(Contribution):
    blob: BlobRef


class AggregationRepository(Protocol):
    async def open_round(self, state: RoundState) -> bool:
        """Insert a collecting round; False if it already existed."""

    async def lock_round(self, federation_id: str, round_number: int) -> RoundState | None:
        """The round with its received count, locked for this transaction (or None)."""

    async def add_contribution(self, federation_id: str, round_number: int, contribution: StoredContribution) -> bool:
        """Count an update once per participant and round; False if one was already counted."""

    async def contributions(self, federation_id: str, round_number: int) -> list[StoredContribution]: ...

    async def set_status(self, federation_id: str, round_number: int, status: RoundStatus, closed_by: str | None, at: datetime) -> None: ...

    async def due_rounds(self, now: datetime) -> list[tuple[str, int]]:
        """Collecting rounds whose deadline has passed."""

    async def save_policy(self, federation_id: str, policy: CentralPolicy) -> None: ...

    async def policy(self, federation_id: str) -> CentralPolicy | None:
        """The federation's central DP policy; None when the aggregate is a plain FedAvg."""

    async def set_clip_norm(self, federation_id: str, clip_norm: float) -> None: ...

    async def park(self, federation_id: str, round_number: int, contribution: StoredContribution) -> None:
        """Keep an update whose round this aggregator has not seen open yet."""

    async def take_parked(self, federation_id: str, round_number: int) -> list[StoredContribution]:
        """Remove and return the updates parked for this round."""

    async def save_he_federation(self, federation_id: str, scheme: str, length: int, slots: int) -> None:
        """Record that a federation's updates are ciphertexts packing ``length`` values."""

    async def set_he_context(self, federation_id: str, fingerprint: str, public_context: BlobRef) -> None:
        """The custodian published the federation's public context."""

    async def he_federation(self, federation_id: str) -> HeFederation | None:
        """None for a plaintext federation."""
