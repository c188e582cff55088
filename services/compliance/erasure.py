"""GDPR erasure (right to be forgotten) with crypto-shredding.

The scheme, store by store:
- **Mutable tables** (registry views, ledgers, admission and aggregation state, other services' tables):
  enrolment data (keys, consents, the enrolment itself) is deleted; everywhere else the participant's id
  is replaced by its *pseudonym*, and its organisation by ``erased``. The pseudonym is a keyed hash under
  the participant's own key (``KeyManager.pseudonym``), so rows keep their shape (a round still counts its
  contributors, a ledger still sums ε) but, once the key is destroyed, nobody can link them back.
- **Append-only stores** are never rewritten: the audit trail records a participant's events under the
  same pseudonym from the start (``audit_source``), and its hash chain stays valid.
- **Blobs**: the participant's updates are sealed under its key (fedstream.storage.envelope); destroying
  the key after the erasure commits crypto-shreds them. Released models are separate blobs and unaffected.
  The key can only go once the erasure has committed (a rolled-back erasure must still compute the
  pseudonym when it is retried), so the erasure's transaction records that the key is due
  (``schedule_shredding``): the handler destroys it right after commit, and ``complete_shredding`` — the
  compliance service's timer, which also runs at start — destroys any still due (destroying is idempotent)
  and records when. A crash between commit and destruction therefore delays the shredding by one tick.
- **Redis**: coordination state mentioning the participant (liveness, buckets, caches) is removed.
- **Kafka** keeps the original events until retention expires them; a replay of the topics before then
  would bring the id back into rebuilt views. Every topic but the audit topic (which carries pseudonyms
  only) is sized to the erasure deadline (schemas/compliance.py), and the certificate states, per topic,
  when the broker's copies are gone, from the topic's config as the broker reports it (``kafka_copies``).

The table inventory is discovered from the catalogue (every text, text[] and json column of every user
table), so tables other services add later are covered without being listed here; ``residual`` then
re-scans every table and the certificate names any that still mention the participant.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from fedstream.security.keys import KeyDestroyed, KeyManager
from schemas.base import derived_id
from schemas.compliance import (
    BROKER_RETENTION_CHECK_MS,
    ERASURE_SCOPE,
    EraseParticipant,
    ErasedRecords,
    ErasureCertified,
    KafkaCopies,
    LineageEntry,
    ParticipantErased,
)
from schemas.topics import ALL_TOPICS, AUDIT, COMPLIANCE, PARTICIPANT, Topic

ERASED_ORGANISATION = "erased"
# Enrolment data is deleted outright (children before parents: participant_keys references enrolments).
DELETED_TABLES = ("participant_keys", "participant_consents", "ingestion_keys", "ingestion_consents", "participant_enrolments")
# Never rewritten: append-only by design (triggers refuse it) or the erasure's own records.
# (erasure_pending_keys names the participant until its key is destroyed: rewriting it would lose the owner.)
APPEND_ONLY_TABLES = (
    "audit_trail", "audit_checkpoints", "erasures", "erasure_pending_keys", "schema_migrations", "processed_messages",
)
# Kafka's defaults where a topic sets nothing (log.retention.hours=168, log.roll.hours=168).
KAFKA_DEFAULT_RETENTION_MS = KAFKA_DEFAULT_SEGMENT_MS = 7 * 86_400_000


# --- pure: finding and replacing an identifier -----------------------------------------------------

_ID_CHARS = "A-Za-z0-9_"  # with "-" (and "."), added last in each class so they are not read as ranges


def id_pattern(participant_id: str) -> str:
    """A regex matching the id as a whole identifier (not ``site-1`` inside ``site-10``), valid both in
    Python and in PostgreSQL's ARE. A trailing ``.`` ends it unless an identifier character follows."""
    return rf"(?<![{_ID_CHARS}.-]){re.escape(participant_id)}(?![{_ID_CHARS}-]|\.[{_ID_CHARS}-])"


def replace_id(text: str, participant_id: str, pseudonym: str) -> str:
    return re.sub(id_pattern(participant_id), pseudonym, text)


def rewrite_json(value: Any, participant_id: str, pseudonym: str) -> Any:
    """The participant's id replaced by its pseudonym at any depth; an object naming the participant
    (``{"participant_id": …, "organisation": …}``) also loses its organisation."""
    if isinstance(value, str):
        return replace_id(value, participant_id, pseudonym)
    if isinstance(value, list):
        return [rewrite_json(v, participant_id, pseudonym) for v in value]
    if isinstance(value, dict):
        names_participant = value.get("participant_id") == participant_id
        out = {replace_id(k, participant_id, pseudonym): rewrite_json(v, participant_id, pseudonym) for k, v in value.items()}
        if names_participant and "organisation" in out:
            out["organisation"] = ERASED_ORGANISATION
        return out
    return value


def audit_source(source: str, pseudonym_of: Callable[[str], str]) -> str:
    """What the audit trail records as an event's source: a participant by its pseudonym, never its id."""
    role, _, who = source.partition("/")
    if role != PARTICIPANT or not who:
        return source
    try:
        return f"{PARTICIPANT}/{pseudonym_of(who)}"
    except KeyDestroyed:
        return f"{PARTICIPANT}/{ERASED_ORGANISATION}"  # a late event of an erased participant


# --- the stores it rewrites (ports) ----------------------------------------------------------------


class ErasureStore(Protocol):
    """The database side of an erasure, inside the handler's transaction."""

    async def federations(self, participant_id: str) -> tuple[str, ...]: ...

    async def lineage(self, participant_id: str) -> tuple[LineageEntry, ...]: ...

    async def erase(self, participant_id: str, pseudonym: str) -> dict[str, int]:
        """Delete enrolment data, pseudonymise the rest; per table, rows deleted or column values rewritten."""

    async def residual(self, participant_id: str) -> tuple[str, ...]:
        """Tables that still mention the participant."""

    async def unreadable(self) -> tuple[str, ...]:
        """Tables outside this login's grants: neither rewritten nor scanned (the certificate names them)."""

    async def record(self, certificate: ErasureCertified) -> None: ...

    async def schedule_shredding(self, pseudonym: str, participant_id: str) -> None:
        """Record, with the erasure, that the participant's key is still to be destroyed (idempotent)."""

    async def pending_shreddings(self, limit: int) -> tuple["PendingShredding", ...]:
        """Keys still to be destroyed, locked for this transaction (others skip them)."""

    async def shredded(self, pseudonym: str, at: datetime) -> None:
        """The key is destroyed: forget the participant's id, record when on the erasure."""


@dataclass(frozen=True)
class PendingShredding:
    pseudonym: str
    participant_id: str


class CoordinationScrubber(Protocol):
    async def scrub(self, participant_id: str) -> int:
        """Remove coordination state mentioning the participant; entries removed."""


@dataclass(frozen=True)
class TopicRetention:
    """A topic's retention as the broker applies it (``source``) or as schemas/topics.py declares it."""

    topic: str
    retention_ms: int
    segment_ms: int
    compacted: bool = False
    source: Literal["broker", "declared"] = "declared"


class RetentionReader(Protocol):
    async def retention(self, topics: tuple[Topic, ...]) -> tuple[TopicRetention, ...]:
        """Each topic's retention settings; the declared ones for a topic the broker could not be asked about."""


# --- pure: Kafka's copies ----------------------------------------------------------------------------


def topics_naming_participants(topics: tuple[Topic, ...] = ALL_TOPICS) -> tuple[Topic, ...]:
    """Every topic but the audit topic: its facts carry pseudonyms only (tests/unit/test_erasure.py checks the
    schemas); every other topic has messages naming participants, or may (the dead-letter topic copies any)."""
    return tuple(t for t in topics if t is not AUDIT)


def declared_retention(topic: Topic) -> TopicRetention:
    config = dict(topic.config)
    return TopicRetention(
        topic.name,
        int(config.get("retention.ms", KAFKA_DEFAULT_RETENTION_MS)),
        int(config.get("segment.ms", KAFKA_DEFAULT_SEGMENT_MS)),
        compacted="delete" not in config.get("cleanup.policy", "delete"),  # compact only: kept by key, forever
    )


class DeclaredRetention:
    """Retention as schemas/topics.py declares it: the fake, and the fallback when the broker cannot be asked."""

    async def retention(self, topics: tuple[Topic, ...]) -> tuple[TopicRetention, ...]:
        return tuple(declared_retention(t) for t in topics)


def kafka_copies(retention: TopicRetention, erased_at: datetime) -> KafkaCopies:
    """When the broker's copies of events produced up to ``erased_at`` are gone (see KafkaCopies)."""
    forever = retention.retention_ms < 0 or retention.compacted
    expires_by = None if forever else erased_at + timedelta(
        milliseconds=retention.segment_ms + retention.retention_ms + BROKER_RETENTION_CHECK_MS
    )
    return KafkaCopies(
        topic=retention.topic, retention_ms=max(retention.retention_ms, -1), segment_ms=retention.segment_ms,
        expires_by=expires_by, source=retention.source,
    )


# --- the procedure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureOutcome:
    certificate: ErasureCertified
    facts: tuple[ParticipantErased, ...]


async def erase(
    command: EraseParticipant,
    keys: KeyManager,
    store: ErasureStore,
    coordination: CoordinationScrubber,
    kafka: RetentionReader,
    now: datetime,
) -> ErasureOutcome | None:
    """Everything but destroying the key, which is scheduled: it goes once this has committed (a rolled-back
    erasure must still be able to compute the pseudonym when it is retried). None: already erased."""
    pid = command.participant_id
    try:
        pseudonym = await asyncio.to_thread(keys.pseudonym, pid)  # key managers do file or network I/O
    except KeyDestroyed:
        return None
    key_ids = await asyncio.to_thread(keys.key_ids, pid)
    federations = await store.federations(pid)
    lineage = await store.lineage(pid)
    erased = await store.erase(pid, pseudonym)
    residual = await store.residual(pid)
    redis_entries = await coordination.scrub(pid)
    retention = await kafka.retention(topics_naming_participants())
    certificate = ErasureCertified(
        event_id=derived_id(command.event_id, "certified"), source=COMPLIANCE, federation_id=ERASURE_SCOPE,
        request_id=command.event_id, pseudonym=pseudonym, erased_at=now, federations=federations,
        erased=tuple(ErasedRecords(table=t, changes=n) for t, n in sorted(erased.items()) if n),
        redis_entries=redis_entries, shredded_key_ids=key_ids, lineage=lineage, residual=residual,
        kafka_copies=tuple(kafka_copies(r, now) for r in retention), unreadable=await store.unreadable(),
    )
    await store.record(certificate)
    await store.schedule_shredding(pseudonym, pid)  # in the same transaction: committed erasure ⇒ key due
    facts = tuple(
        ParticipantErased(
            event_id=derived_id(command.event_id, f, "erased"), source=COMPLIANCE, federation_id=f,
            pseudonym=pseudonym, erased_at=now,
        )
        for f in federations
    )
    return ErasureOutcome(certificate, facts)


async def complete_shredding(
    keys: KeyManager, store: ErasureStore, now: datetime, limit: int = 100
) -> tuple[PendingShredding, ...]:
    """Destroy every key still due and record it; returns those done. Destroying first, recording after: a
    crash in between destroys again next time, which changes nothing."""
    due = await store.pending_shreddings(limit)
    for d in due:
        await asyncio.to_thread(keys.destroy, d.participant_id)
        await store.shredded(d.pseudonym, now)
    return due


@dataclass(frozen=True)
class ErasureServices:
    """What the compliance service needs to pseudonymise its audit trail and carry out erasures."""

    keys: KeyManager
    store: Callable[[Any], ErasureStore]  # bound to the handler's transaction (its repository)
    coordination: CoordinationScrubber
    clock: Callable[[], datetime]
    kafka: RetentionReader = field(default_factory=DeclaredRetention)  # the broker's, in the real service
