from __future__ import annotations

from typing import Protocol
from uuid import UUID

from datetime import datetime

from services.ingestion.domain import FederationView, RoundView
from services.ingestion.identity import BaaView, ConsentView, KeyView
from schemas.events import UpdateSubmitted


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

    # --- identity projection (facts from fedstream.identity) ---

    async def save_key(self, key: KeyView) -> None:
        """Record an enrolled key; enrolling it again changes nothing (a revoked key stays revoked)."""

    async def revoke_key(self, key_id: str) -> None: ...

    async def key(self, key_id: str) -> KeyView | None: ...

    async def save_consent(self, consent: ConsentView) -> None:
        """The latest consent per participant, purpose and scope replaces the one before."""

    async def consents(self, participant_id: str) -> list[ConsentView]: ...

    async def save_baa(self, baa: BaaView) -> None: ...

    async def baa(self, organisation: str) -> BaaView | None: ...

    async def use_nonce(self, key_id: str, nonce: str, event_id: UUID, signed_at: datetime) -> bool:
        """The durable replay backstop: True the first time a key's nonce is used (and again for the
        same event, e.g. a retried batch), False for any other message carrying it."""

    async def forget_nonces(self, signed_before: datetime) -> int:
        """Prune nonces too old to matter (their messages are refused as stale); returns how many."""

    # --- submissions parked until their federation or round is known ---

    async def park(self, event: UpdateSubmitted, parked_at: datetime) -> None: ...

    async def take_parked(self, federation_id: str, round_number: int) -> list[UpdateSubmitted]:
        """Remove and return what was parked for this round."""

    async def take_parked_up_to(self, federation_id: str, round_number: int) -> list[UpdateSubmitted]:
        """Remove and return what was parked for this round or any earlier one."""

    async def take_parked_before(self, parked_before: datetime) -> list[UpdateSubmitted]:
        """Remove and return everything parked longer than the TTL, in any federation."""
