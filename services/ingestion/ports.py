from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from fedstream.security.message_auth import NonceClaim

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

    async def keys(self, key_ids: Collection[str]) -> dict[str, KeyView]:
        """The known ones of these keys, by key id (one lookup for a whole batch)."""

    async def save_consent(self, consent: ConsentView) -> None:
        """The latest consent per participant, purpose and scope replaces the one before."""

    async def consents_of(self, participant_ids: Collection[str]) -> dict[str, list[ConsentView]]:
        """Each participant's consents (a participant with none is absent)."""

    async def save_baa(self, baa: BaaView) -> None: ...

    async def baas(self, organisations: Collection[str]) -> dict[str, BaaView]:
        """The BAAs of these organisations that exist, by organisation."""

    async def use_nonces(self, claims: Sequence[NonceClaim]) -> set[UUID]:
        """The durable replay backstop, for a batch at once: the event ids whose claim holds — the first use
        of a key's nonce, or again by the same event (a retried batch); not any other message carrying it
        (nor a later claim of the same nonce in ``claims``)."""

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
