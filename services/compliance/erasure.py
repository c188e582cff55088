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
- **Redis**: coordination state mentioning the participant (liveness, buckets, caches) is removed.
- **Kafka** keeps the original events until retention expires them; a replay of the topics before then
  would bring the id back into rebuilt views (size topic retention to the erasure deadline).

The table inventory is discovered from the catalogue (every text, text[] and json column of every user
table), so tables other services add later are covered without being listed here; ``residual`` then
re-scans every table and the certificate names any that still mention the participant.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from fedstream.security.keys import KeyDestroyed, KeyManager
from schemas.base import derived_id
from schemas.compliance import (
    ERASURE_SCOPE,
    EraseParticipant,
    ErasedRecords,
    ErasureCertified,
    LineageEntry,
    ParticipantErased,
)
from schemas.topics import COMPLIANCE, PARTICIPANT

ERASED_ORGANISATION = "erased"
# Enrolment data is deleted outright (children before parents: participant_keys references enrolments).
DELETED_TABLES = ("participant_keys", "participant_consents", "ingestion_keys", "ingestion_consents", "participant_enrolments")
# Never rewritten: append-only by design (triggers refuse it) or the erasure's own records.
APPEND_ONLY_TABLES = ("audit_trail", "audit_checkpoints", "erasures", "schema_migrations", "processed_messages")


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

    async def record(self, certificate: ErasureCertified) -> None: ...


class CoordinationScrubber(Protocol):
    async def scrub(self, participant_id: str) -> int:
        """Remove coordination state mentioning the participant; entries removed."""


# --- the procedure ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureOutcome:
    certificate: ErasureCertified
    facts: tuple[ParticipantErased, ...]


async def erase(
    command: EraseParticipant, keys: KeyManager, store: ErasureStore, coordination: CoordinationScrubber, now: datetime
) -> ErasureOutcome | None:
    """Everything but destroying the key, which the caller does once this has committed (a rolled-back
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
    certificate = ErasureCertified(
        event_id=derived_id(command.event_id, "certified"), source=COMPLIANCE, federation_id=ERASURE_SCOPE,
        request_id=command.event_id, pseudonym=pseudonym, erased_at=now, federations=federations,
        erased=tuple(ErasedRecords(table=t, changes=n) for t, n in sorted(erased.items()) if n),
        redis_entries=redis_entries, shredded_key_ids=key_ids, lineage=lineage, residual=residual,
    )
    await store.record(certificate)
    facts = tuple(
        ParticipantErased(
            event_id=derived_id(command.event_id, f, "erased"), source=COMPLIANCE, federation_id=f,
            pseudonym=pseudonym, erased_at=now,
        )
        for f in federations
    )
    return ErasureOutcome(certificate, facts)


@dataclass(frozen=True)
class ErasureServices:
    """What the compliance service needs to pseudonymise its audit trail and carry out erasures."""

    keys: KeyManager
    store: Callable[[Any], ErasureStore]  # bound to the handler's transaction (its repository)
    coordination: CoordinationScrubber
    clock: Callable[[], datetime]
