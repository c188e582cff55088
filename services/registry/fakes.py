from __future__ import annotations

from datetime import datetime

from services.registry.domain import FederationState
from schemas.base import Event
from schemas.events import RoundOpened


class InMemoryRegistryRepository:
    def __init__(self) -> None:
        self.states: dict[str, FederationState] = {}
        self.projected: list[Event] = []

    async def create(self, state: FederationState) -> bool:
        if state.federation_id in self.states:
            return False
        self.states[state.federation_id] = state
        return True

    async def lock(self, federation_id: str) -> FederationState | None:
        return self.states.get(federation_id)

    async def save(self, state: FederationState) -> None:
        self.states[state.federation_id] = state

    async def project(self, event: Event) -> None:
        self.projected.append(event)

    async def round_opened_at(self, federation_id: str, round_number: int) -> datetime | None:
        opened = [e for e in self.projected
                  if isinstance(e, RoundOpened) and e.federation_id == federation_id and e.round == round_number]
        return opened[0].time if opened else None
