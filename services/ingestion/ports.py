from __future__ import annotations

from typing import Protocol
from uuid import UUID

from services.ingestion.domain import FederationView, RoundView


class AdmissionRepository(Protocol):
    async def save_federation(self, federation: FederationView) -> None: ...

    async def federation(self, federation_id: str) -> FederationView | None: ...

    async def open_round(self, view: RoundView) -> None:
        """Record the round as open and every earlier round of the federation as closed."""

    async def close_round(self, federation_id: str, round_number: int) -> None: ...

    async def close_federation(self, federation_id: str) -> None: ...

    async def current_round(self, federation_id: str) -> RoundView | None: ...

    async def admit(self, federation_id: str, round_number: int, participant_id: str, update_id: UUID) -> bool:
        """Record the admission; False if this participant already has one this round."""
