from __future__ import annotations

from datetime import datetime
from typing import Protocol

from services.registry.domain import FederationState
from schemas.base import Event


class RegistryState(Protocol):
    """The registry's own decision state (not a view)."""

    async def create(self, state: FederationState) -> bool: ...

    async def lock(self, federation_id: str) -> FederationState | None: ...

    async def save(self, state: FederationState) -> None: ...


class RegistryViews(Protocol):
    """Read views materialised from events; every method is an idempotent, order-tolerant upsert."""

    async def project(self, event: Event) -> None: ...

    async def round_opened_at(self, federation_id: str, round_number: int) -> datetime | None:
        """When the round opened, as projected (None if that event is not projected yet)."""


class RegistryRepository(RegistryState, RegistryViews, Protocol):
    pass
