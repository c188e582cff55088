from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from fedstream.storage.nonces import InMemoryNonces
from services.ingestion.domain import FederationView, RoundView
from services.ingestion.identity import BaaView, ConsentView, KeyView
from schemas.events import UpdateSubmitted


class InMemoryAdmissionRepository(InMemoryNonces):
    def __init__(self) -> None:
        super().__init__()
        self.federations: dict[str, FederationView] = {}
        self.rounds: dict[tuple[str, int], RoundView] = {}
        self.admissions: dict[tuple[str, int, str], UUID] = {}
        self.keys_by_id: dict[str, KeyView] = {}
        self.consent_records: dict[tuple[str, str, str], ConsentView] = {}
        self.baa_records: dict[str, BaaView] = {}
        self.parked: dict[UUID, tuple[datetime, UpdateSubmitted]] = {}

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

    async def save_key(self, key: KeyView) -> None:
        self.keys_by_id.setdefault(key.key_id, key)

    async def revoke_key(self, key_id: str) -> None:
        if key_id in self.keys_by_id:
            self.keys_by_id[key_id] = replace(self.keys_by_id[key_id], revoked=True)

    async def keys(self, key_ids: Collection[str]) -> dict[str, KeyView]:
        return {k: self.keys_by_id[k] for k in key_ids if k in self.keys_by_id}

    async def save_consent(self, consent: ConsentView) -> None:
        self.consent_records[(consent.participant_id, consent.purpose, consent.scope)] = consent

    async def consents_of(self, participant_ids: Collection[str]) -> dict[str, list[ConsentView]]:
        consents: dict[str, list[ConsentView]] = {}
        for (p, _, _), c in self.consent_records.items():
            if p in participant_ids:
                consents.setdefault(p, []).append(c)
        return consents

    async def save_baa(self, baa: BaaView) -> None:
        self.baa_records[baa.organisation] = baa

    async def baas(self, organisations: Collection[str]) -> dict[str, BaaView]:
        return {o: self.baa_records[o] for o in organisations if o in self.baa_records}

    async def park(self, event: UpdateSubmitted, parked_at: datetime) -> None:
        self.parked.setdefault(event.update_id, (parked_at, event))

    async def take_parked(self, federation_id: str, round_number: int) -> list[UpdateSubmitted]:
        return self._take(lambda at, e: e.federation_id == federation_id and e.round == round_number)

    async def take_parked_up_to(self, federation_id: str, round_number: int) -> list[UpdateSubmitted]:
        return self._take(lambda at, e: e.federation_id == federation_id and e.round <= round_number)

    async def take_parked_before(self, parked_before: datetime) -> list[UpdateSubmitted]:
        return self._take(lambda at, e: at < parked_before)

    def _take(self, wanted) -> list[UpdateSubmitted]:  # noqa: ANN001 - a predicate on (parked_at, event)
        taken = sorted((v for v in self.parked.values() if wanted(*v)), key=lambda v: (v[0], str(v[1].update_id)))
        for _, event in taken:
            del self.parked[event.update_id]
        return [event for _, event in taken]
