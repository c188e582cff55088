"""In-memory ports for tests: the same row scoping as the database's policies, stated in Python."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedstream.api.auth import Principal, User
from fedstream.api.ports import PublishFailed
from fedstream.api.models import AuditRowOut, FederationOut, LedgerOut, ParticipantOut, ReleaseOut, RoundOut, VerifyOut
from schemas.access import ApiRole
from schemas.base import Event
from schemas.topics import topic_for


class InMemoryUserDirectory:
    def __init__(self, users: dict[str, User] | None = None) -> None:
        self.users = dict(users or {})  # token hash -> user
        self.last_step: dict[str, int] = {}

    async def by_token_hash(self, token_sha256: str) -> User | None:
        return self.users.get(token_sha256)

    async def spend_totp_step(self, user_id: str, step: int) -> bool:
        if step <= self.last_step.get(user_id, -1):
            return False
        self.last_step[user_id] = step
        return True


@dataclass
class InMemoryReadStore:
    federation_rows: list[FederationOut] = field(default_factory=list)
    round_rows: dict[str, list[RoundOut]] = field(default_factory=dict)
    release_rows: dict[str, list[ReleaseOut]] = field(default_factory=dict)
    participant_rows: dict[str, list[ParticipantOut]] = field(default_factory=dict)
    ledger_rows: dict[str, list[LedgerOut]] = field(default_factory=dict)
    audit_rows: list[AuditRowOut] = field(default_factory=list)
    enrolments: dict[str, str] = field(default_factory=dict)  # participant -> organisation

    def _own(self, who: Principal, participant_id: str) -> bool:
        return who.role is not ApiRole.SITE_OPERATOR or self.enrolments.get(participant_id) == who.tenant

    async def federations(self, who: Principal) -> list[FederationOut]:
        return list(self.federation_rows)

    async def rounds(self, who: Principal, federation_id: str) -> list[RoundOut]:
        return list(self.round_rows.get(federation_id, []))

    async def releases(self, who: Principal, federation_id: str) -> list[ReleaseOut]:
        return list(self.release_rows.get(federation_id, []))

    async def participants(self, who: Principal, federation_id: str) -> list[ParticipantOut]:
        return [p for p in self.participant_rows.get(federation_id, []) if self._own(who, p.participant_id)]

    async def ledger(self, who: Principal, federation_id: str) -> list[LedgerOut]:
        return [r for r in self.ledger_rows.get(federation_id, []) if self._own(who, r.participant_id)]

    async def audit_trail(self, who: Principal, after_seq: int, limit: int) -> list[AuditRowOut]:
        return [r for r in self.audit_rows if r.seq > after_seq][:limit]

    async def verify_audit_trail(self, who: Principal) -> VerifyOut:
        head = self.audit_rows[-1].row_hash if self.audit_rows else None
        return VerifyOut(rows=len(self.audit_rows), head=head, intact=True)

    async def organisation_of(self, who: Principal, participant_id: str) -> str | None:
        return self.enrolments.get(participant_id)


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.failing = False

    async def publish(self, event: Event) -> str:
        if self.failing:
            raise PublishFailed("broker unavailable")
        self.events.append(event)
        return topic_for(type(event)).name
