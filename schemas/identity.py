"""Participant identity: enrolment, keys, consent and business-associate agreements.

Commands go to the registry (which owns participants) on ``fedstream.commands``; the facts it decides
travel on ``fedstream.identity``, from which ingestion keeps its own admission projection.

Identity messages are about an organisation (the tenant), not a federation: their ``federation_id``
envelope field carries the organisation id, so one tenant's identity facts are keyed, and therefore
ordered, together.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, StringConstraints

from schemas.base import Event, Frozen, Identifier

# Ed25519 public keys and signatures, base64url without padding (32 and 64 bytes).
PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
SignatureBytes = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
# The key's fingerprint: the first 16 bytes of sha256(public key), hex.
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Nonce = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Purpose = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
ANY_FEDERATION = "*"
ConsentScope = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9][a-z0-9._-]{0,62})$")]
Reference = Annotated[str, StringConstraints(min_length=1, max_length=200)]
TRAINING_PURPOSE = "federated_training"


class Signature(Frozen):
    """A participant's Ed25519 signature over the canonical form of the message it travels in
    (see ``fedstream.security.signing``): who signed, when, and a single-use nonce."""

    key_id: KeyId
    nonce: Nonce
    signed_at: AwareDatetime
    signature: SignatureBytes


# --- commands (operator CLI / admin API → registry) --------------------------------------------


class EnrolParticipant(Event):
    """Register a participant's public key under its organisation (the tenant). Enrolling another key
    for an enrolled participant adds it (key rotation); the old one stays valid until revoked."""

    TYPE: ClassVar[str] = "io.fedstream.participant.enrol.v1"
    participant_id: Identifier
    organisation: Identifier
    public_key: PublicKey
    baa_reference: Reference | None = None
    requested_by: Identifier


class RevokeParticipantKey(Event):
    TYPE: ClassVar[str] = "io.fedstream.participant.revoke_key.v1"
    participant_id: Identifier
    key_id: KeyId
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    requested_by: Identifier


class RecordConsent(Event):
    """Grant (or withdraw, ``granted=False``) consent for a purpose within a scope (a federation id, or
    ``*`` for every federation) until ``expires_at``."""

    TYPE: ClassVar[str] = "io.fedstream.consent.record.v1"
    participant_id: Identifier
    purpose: Purpose = TRAINING_PURPOSE
    scope: ConsentScope = ANY_FEDERATION
    expires_at: AwareDatetime
    granted: bool = True
    requested_by: Identifier


class RegisterBaa(Event):
    """Record a business-associate agreement of a covered entity (an organisation)."""

    TYPE: ClassVar[str] = "io.fedstream.baa.register.v1"
    organisation: Identifier
    reference: Reference
    expires_at: AwareDatetime
    active: bool = True
    requested_by: Identifier


# --- facts (registry → fedstream.identity) -------------------------------------------------------


class ParticipantEnrolled(Event):
    TYPE: ClassVar[str] = "io.fedstream.participant.enrolled.v1"
    participant_id: Identifier
    organisation: Identifier
    key_id: KeyId
    public_key: PublicKey
    baa_reference: Reference | None = None


class ParticipantKeyRevoked(Event):
    TYPE: ClassVar[str] = "io.fedstream.participant.key_revoked.v1"
    participant_id: Identifier
    key_id: KeyId
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class ConsentRecorded(Event):
    TYPE: ClassVar[str] = "io.fedstream.consent.recorded.v1"
    participant_id: Identifier
    purpose: Purpose
    scope: ConsentScope
    expires_at: AwareDatetime
    granted: bool


class BaaRegistered(Event):
    TYPE: ClassVar[str] = "io.fedstream.baa.registered.v1"
    organisation: Identifier
    reference: Reference
    expires_at: AwareDatetime
    active: bool


class IdentityRefused(Event):
    """A command the registry would not apply (e.g. revoking a key of another participant)."""

    TYPE: ClassVar[str] = "io.fedstream.identity.refused.v1"
    command_id: Annotated[str, StringConstraints(max_length=64)]
    reason: Annotated[str, StringConstraints(max_length=500)]


COMMANDS = (EnrolParticipant, RevokeParticipantKey, RecordConsent, RegisterBaa)
FACTS = (ParticipantEnrolled, ParticipantKeyRevoked, ConsentRecorded, BaaRegistered, IdentityRefused)
