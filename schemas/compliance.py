"""Facts the compliance service publishes on ``fedstream.audit``.

``AuditCheckpointSigned`` is a signed Merkle tree head over the audit trail (RFC 6962 style): anyone
holding the compliance service's public key can check, from the published events alone, that each
checkpoint is genuine and that the trail only ever grew between two checkpoints (the consistency proof
each checkpoint carries from the one before it). How to do that by hand is in README.md
("Tamper-evident audit").
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints

from schemas.base import Event, Frozen, Identifier, Sha256Hex

# Same encodings as schemas.identity: Ed25519 keys and signatures base64url without padding, a key id
# of the first 16 bytes of sha256(raw public key) in hex.
AuditPublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
AuditSignature = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
AuditKeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]

# The audit trail spans every federation; its checkpoints are keyed (and so ordered) under this id.
AUDIT_TRAIL_ID = "audit-trail"
# The domain-separation tag inside every signed checkpoint body (see services.compliance.checkpoints).
CHECKPOINT_SIGNATURE_CONTEXT = "fedstream.audit.checkpoint.v1"


class AuditCheckpointSigned(Event):
    """A signed Merkle tree head over the audit trail's first ``tree_size`` rows.

    The Ed25519 signature covers the RFC 8785 canonical JSON of ``{"context", "tree_size",
    "root_hash", "signed_at"}``; ``consistency_proof`` (RFC 6962 PROOF, hex) shows the tree of
    ``previous_size`` rows (the previous checkpoint) is a prefix of this one.
    """

    TYPE: ClassVar[str] = "io.fedstream.audit.checkpoint_signed.v1"
    tree_size: int = Field(ge=1)
    root_hash: Sha256Hex
    signed_at: AwareDatetime
    key_id: AuditKeyId
    public_key: AuditPublicKey
    signature: AuditSignature
    previous_size: int = Field(ge=0)
    consistency_proof: tuple[Sha256Hex, ...] = Field(default=(), max_length=128)


# --- erasure (GDPR art. 17) ------------------------------------------------------------------------
# Erasure spans federations: requests and certificates travel under this envelope id (one partition, in order).
ERASURE_SCOPE = "gdpr"
TableName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_.]{0,126}$")]
KafkaTopicName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]

# GDPR art. 17 asks for erasure "without undue delay", art. 12(3) answers within one month: the erasure
# deadline. Kafka keeps a participant's original events until its topics' retention expires them, so every
# topic that carries participant ids is sized to be clean by then (schemas/topics.py applies this config).
ERASURE_DEADLINE_DAYS = 30
DAY_MS = 86_400_000
# Kafka deletes a record only once its segment has rolled (at most segment.ms after the segment opened) and
# the segment's newest record is older than retention.ms; the broker looks every
# log.retention.check.interval.ms (default 5 minutes). A copy is gone by the sum of the three.
PARTICIPANT_TOPIC_SEGMENT_MS = DAY_MS
PARTICIPANT_TOPIC_RETENTION_MS = ERASURE_DEADLINE_DAYS * DAY_MS - PARTICIPANT_TOPIC_SEGMENT_MS
BROKER_RETENTION_CHECK_MS = 300_000
PARTICIPANT_TOPIC_CONFIG: tuple[tuple[str, str], ...] = (
    ("retention.ms", str(PARTICIPANT_TOPIC_RETENTION_MS)),
    ("segment.ms", str(PARTICIPANT_TOPIC_SEGMENT_MS)),
)


class EraseParticipant(Event):
    """Command (operator → compliance): erase a participant everywhere — personal data removed or
    pseudonymised, its blobs crypto-shredded, excluded from future rounds, a certificate published."""

    TYPE: ClassVar[str] = "io.fedstream.participant.erase.v1"
    participant_id: Identifier
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    requested_by: Identifier


class ParticipantErased(Event):
    """Fact, one per federation the participant was in: ``pseudonym`` now stands where its id was (the
    registry excludes it from later rounds). The id itself is in no fact: these events outlive the erasure."""

    TYPE: ClassVar[str] = "io.fedstream.participant.erased.v1"
    pseudonym: Identifier
    erased_at: AwareDatetime


class ErasedRecords(Frozen):
    table: TableName
    changes: int = Field(ge=0)  # rows deleted, or column values rewritten (id → pseudonym, organisation → erased)


class LineageEntry(Frozen):
    """A round whose aggregate counted the participant's update, and the model version it was released as
    (None: aggregated but not released)."""

    federation_id: Identifier
    round: int = Field(ge=1)
    model_version: int | None = Field(default=None, ge=1)


class KafkaCopies(Frozen):
    """A topic whose broker still holds the participant's original events (which name it) after the erasure,
    and by when they are gone: ``expires_by`` = erasure + segment.ms + retention.ms + the broker's retention
    check; None: never (retention -1, or a compacted topic). ``source``: the broker's own topic config, or
    (when the broker could not be asked) the config declared in schemas/topics.py."""

    topic: KafkaTopicName
    retention_ms: int = Field(ge=-1)
    segment_ms: int = Field(ge=1)
    expires_by: AwareDatetime | None
    source: Literal["broker", "declared"]


class ErasureCertified(Event):
    """The erasure certificate: what was erased, which keys are shredded, which models the participant's
    contributions reached, any store that could not be rewritten (``residual``, normally empty), and until
    when Kafka still holds copies of its original events (``kafka_copies``).

    The keys in ``shredded_key_ids`` are destroyed once the erasure has committed: the erasure records that
    they are due in the same transaction, and the compliance service destroys them and records when
    (``erasures.keys_destroyed_at``; ``fedstream gdpr status``), even after a crash in between.
    """

    TYPE: ClassVar[str] = "io.fedstream.erasure.certified.v1"
    request_id: UUID
    pseudonym: Identifier
    erased_at: AwareDatetime
    federations: tuple[Identifier, ...]
    erased: tuple[ErasedRecords, ...]
    redis_entries: int = Field(ge=0)
    shredded_key_ids: tuple[Annotated[str, StringConstraints(min_length=1, max_length=128)], ...]
    lineage: tuple[LineageEntry, ...]
    residual: tuple[TableName, ...] = ()
    kafka_copies: tuple[KafkaCopies, ...] = ()
    # Tables the compliance service's login may not read (e.g. the admin API's users): not searched.
    unreadable: tuple[TableName, ...] = ()


FACTS = (AuditCheckpointSigned, ParticipantErased, ErasureCertified)
COMMANDS = (EraseParticipant,)
