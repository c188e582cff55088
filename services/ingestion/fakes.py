from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from services.ingestion.domain import FederationView, RoundView
from services.ingestion.identity import BaaView, ConsentView, KeyView
from schemas.events import UpdateSubmitted


class InMemoryAdmissionRepository:
    def __init__(self) -> None:
        self.federations: dict[str, FederationView] = {}
        self.rounds: dict[tuple[str, int], RoundView] = {}
        self.admissions: dict[tuple[str, int, str], UUID] = {}
        self.keys: dict[str, KeyView] = {}
        self.consent_records: dict[tuple[str, str, str], ConsentView] = {}
        self.baas: dict[str, BaaView] = {}
        self.nonces: dict[tuple[str, str], tuple[UUID, datetime]] = {}
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
        self.keys.setdefault(key.key_id, key)

    async def revoke_key(self, key_id: str) -> None:
        if key_id in self.keys:
            self.keys[key_id] = replace(self.keys[key_id], revoked=True)

    async def key(self, key_id: str) -> KeyView | None:
        return self.keys.get(key_id)

    async def save_consent(self, consent: ConsentView) -> None:
        self.consent_records[(consent.participant_id, consent.purpose, consent.scope)] = consent

    async def consents(self, participant_id: str) -> list[ConsentView]:
        return [c for (p, _, _), c in self.consent_records.items() if p == participant_id]

    async def save_baa(self, baa: BaaView) -> None:
        self.baas[baa.organisation] = baa

    async def baa(self, organisation: str) -> BaaView | None:
        return self.baas.get(organisation)

    async def use_nonce(self, key_id: str, nonce: str, event_id: UUID, signed_at: datetime) -> bool:
        held = self.nonces.setdefault((key_id, nonce), (event_id, signed_at))
        return held[0] == event_id

    async def forget_nonces(self, signed_before: datetime) -> int:
        old = [k for k, (_, at) in self.nonces.items() if at < signed_before]
        for k in old:
            del self.nonces[k]
        return len(old)

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
