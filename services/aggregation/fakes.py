"""In-memory aggregation repository for unit tests of the handlers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from schemas.base import BlobRef

from services.aggregation.domain import CentralPolicy, HeFederation, RoundState, RoundStatus
from services.aggregation.ports import StoredContribution


class InMemoryAggregationRepository:
    def __init__(self) -> None:
        self.rounds: dict[tuple[str, int], RoundState] = {}
        self.contributed: dict[tuple[str, int], dict[str, StoredContribution]] = {}
        self.policies: dict[str, CentralPolicy] = {}
        self.parked: dict[tuple[str, int], list[StoredContribution]] = {}
        self.encrypted: dict[str, HeFederation] = {}

    async def open_round(self, state: RoundState) -> bool:
        key = (state.federation_id, state.round)
        if key in self.rounds:
            return False
        self.rounds[key] = replace(state, received=0)
        self.contributed[key] = {}
        return True

    async def lock_round(self, federation_id: str, round_number: int) -> RoundState | None:
        state = self.rounds.get((federation_id, round_number))
        if state is None:
            return None
        return replace(state, received=len(self.contributed[(federation_id, round_number)]))

    async def add_contribution(self, federation_id: str, round_number: int, c: StoredContribution) -> bool:
        bucket = self.contributed[(federation_id, round_number)]
        if c.participant_id in bucket:
            return False
        bucket[c.participant_id] = c
        return True

    async def contributions(self, federation_id: str, round_number: int) -> list[StoredContribution]:
        bucket = self.contributed.get((federation_id, round_number), {})
        return [bucket[p] for p in sorted(bucket)]

    async def set_status(self, federation_id: str, round_number: int, status: RoundStatus, closed_by: str | None, at: datetime) -> None:
        key = (federation_id, round_number)
        self.rounds[key] = replace(self.rounds[key], status=status)

    async def due_rounds(self, now: datetime) -> list[tuple[str, int]]:
        return [k for k, s in self.rounds.items() if s.status is RoundStatus.COLLECTING and s.deadline <= now]

    async def save_policy(self, federation_id: str, policy: CentralPolicy) -> None:
        self.policies.setdefault(federation_id, policy)

    async def policy(self, federation_id: str) -> CentralPolicy | None:
        return self.policies.get(federation_id)

    async def set_clip_norm(self, federation_id: str, clip_norm: float) -> None:
        self.policies[federation_id] = replace(self.policies[federation_id], clip_norm=clip_norm)

    async def park(self, federation_id: str, round_number: int, contribution: StoredContribution) -> None:
        bucket = self.parked.setdefault((federation_id, round_number), [])
        if all(c.update_id != contribution.update_id for c in bucket):
            bucket.append(contribution)

    async def take_parked(self, federation_id: str, round_number: int) -> list[StoredContribution]:
        return self.parked.pop((federation_id, round_number), [])

    async def save_he_federation(self, federation_id: str, scheme: str, length: int, slots: int) -> None:
        self.encrypted.setdefault(federation_id, HeFederation(scheme, length, slots))

    async def set_he_context(self, federation_id: str, fingerprint: str, public_context: BlobRef) -> None:
        if federation_id in self.encrypted:
            self.encrypted[federation_id] = replace(self.encrypted[federation_id], fingerprint=fingerprint,
                                                    public_context=public_context)

    async def he_federation(self, federation_id: str) -> HeFederation | None:
        return self.encrypted.get(federation_id)
