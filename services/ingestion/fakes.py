from __future__ import annotations

from dataclasses import replace
from uuid import UUID

from services.ingestion.domain import FederationView, RoundView


class InMemoryAdmissionRepository:
    def __init__(self) -> None:
        self.federations: dict[str, FederationView] = {}
        self.rounds: dict[tuple[str, int], RoundView] = {}
        self.admissions: dict[tuple[str, int, str], UUID] = {}

    async def save_federation(self, federation: FederationView) -> None:
        self.federations.setdefault(federation.federation_id, federation)

    async def federation(self, federation_id: str) -> FederationView | None:
        return self.federations.get(federation_id)

    async def open_round(self, view: RoundView) -> None:
        for key, r in list(self.rounds.items()):
            if key[0] == view.federation_id and key[1] < view.round:
                self.rounds[key] = replace(r, open=False)
        self.rounds.setdefault((view.federation_id, view.round), view)

    async def close_round(self, federation_id: str, round_number: int) -> None:
        key = (federation_id, round_number)
        if key in self.rounds:
            self.rounds[key] = replace(self.rounds[key], open=False)

    async def close_federation(self, federation_id: str) -> None:
        for key, r in list(self.rounds.items()):
            if key[0] == federation_id:
                self.rounds[key] = replace(r, open=False)

    async def current_round(self, federation_id: str) -> RoundView | None:
        rounds = [r for (f, _), r in self.rounds.items() if f == federation_id]
        return max(rounds, key=lambda r: r.round, default=None)

    async def admit(self, federation_id: str, round_number: int, participant_id: str, update_id: UUID) -> bool:
        key = (federation_id, round_number, participant_id)
        if key in self.admissions:
            return False
        self.admissions[key] = update_id
        return True
