from __future__ import annotations

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


class RegistryRepository(RegistryState, RegistryViews, Protocol):
    pass
