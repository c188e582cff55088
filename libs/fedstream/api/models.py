"""What the API returns and accepts (HTTP bodies; the events they turn into live in ``schemas/``)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.base import Identifier
from schemas.identity import ANY_FEDERATION, TRAINING_PURPOSE, ConsentScope, KeyId, PublicKey, Purpose, Reference


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class FederationOut(Out):
    federation_id: str
    project_name: str
    use_case: str
    crypto: str
    created_at: datetime
    completed_at: datetime | None
    completion_reason: str | None
    rounds_run: int | None


class RoundOut(Out):
    round: int
    status: str
    model_version: int | None
    contributors: int | None
    opened_at: datetime | None
    duration_s: float | None


class ReleaseOut(Out):
    version: int
    round: int | None
    sha256: str
    size: int
    released_at: datetime


class ParticipantOut(Out):
    participant_id: str
    organisation: str
    kind: str
    enrolled_at: datetime


class LedgerOut(Out):
    participant_id: str
    dataset_id: str
    charges: int
    last_round: int | None
    epsilon_spent: float
    epsilon_remaining: float
    budget_epsilon: float
    budget_delta: float
    exhausted: bool


class AuditRowOut(Out):
    seq: int
    event_id: UUID
    event_type: str
    topic: str
    federation_id: str
    round: int | None
    source: str
    occurred_at: datetime
    payload_sha256: str
    prev_hash: str
    row_hash: str


class VerifyOut(Out):
    rows: int
    head: str | None
    intact: bool
    broken_seq: int | None = None
    problem: str | None = None


class CommandAccepted(Out):
    """The command is on its topic; its outcome arrives as a fact (e.g. ``ParticipantEnrolled``)."""

    event_id: UUID
    type: str
    topic: str


class In(BaseModel):
    # Not strict: JSON has no datetime type, so timestamps arrive as ISO 8601 strings. Unknown fields are refused.
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnrolRequest(In):
    participant_id: Identifier
    organisation: Identifier
    public_key: PublicKey
    baa_reference: Reference | None = None


class RevokeRequest(In):
    key_id: KeyId
    reason: str = Field(default="", max_length=500)


class ConsentRequest(In):
    purpose: Purpose = TRAINING_PURPOSE
    scope: ConsentScope = ANY_FEDERATION
    expires_at: AwareDatetime
    granted: bool = True


class BaaRequest(In):
    reference: Reference
    expires_at: AwareDatetime
    active: bool = True


class EraseRequest(In):
    reason: str = Field(default="", max_length=500)
