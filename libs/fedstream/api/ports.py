"""The API's ports: who the callers are, what they may read (row-level security decides the rows), and
where its events go."""

from __future__ import annotations

from typing import Protocol

from fedstream.api.auth import Principal, User
from fedstream.api.models import AuditRowOut, FederationOut, LedgerOut, ParticipantOut, ReleaseOut, RoundOut, VerifyOut
from schemas.base import Event


class UserDirectory(Protocol):
    async def by_token_hash(self, token_sha256: str) -> User | None: ...

    async def spend_totp_step(self, user_id: str, step: int) -> bool:
        """True once per user and step (and only for a step later than the last one spent)."""


class ReadStore(Protocol):
    """Every read runs as the caller's database role and tenant."""

    async def federations(self, who: Principal) -> list[FederationOut]: ...

    async def rounds(self, who: Principal, federation_id: str) -> list[RoundOut]: ...

    async def releases(self, who: Principal, federation_id: str) -> list[ReleaseOut]: ...

    async def participants(self, who: Principal, federation_id: str) -> list[ParticipantOut]: ...

    async def ledger(self, who: Principal, federation_id: str) -> list[LedgerOut]: ...

    async def audit_trail(self, who: Principal, after_seq: int, limit: int) -> list[AuditRowOut]: ...

    async def verify_audit_trail(self, who: Principal) -> VerifyOut: ...

    async def organisation_of(self, who: Principal, participant_id: str) -> str | None:
        """The enrolled participant's organisation (tenant), or None when it is not enrolled."""


class PublishFailed(RuntimeError):
    """The broker did not acknowledge an event: a read it was to audit must not be answered."""


class EventPublisher(Protocol):
    async def publish(self, event: Event) -> str:
        """Publish on the event's topic and wait for the broker's acknowledgement; returns the topic.
        Raises ``PublishFailed`` when it was not acknowledged."""
