"""The registry's identity decisions: enrol participants and their keys, revoke keys, record consents
and business-associate agreements. Commands in (``fedstream.commands``), facts out (``fedstream.identity``).

The registry owns participants; ingestion projects the facts for admission. Facts are keyed by the
participant's organisation (the tenant), and carry ids derived from what they state, so deciding the
same command twice publishes the same fact, which every inbox collapses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import asyncpg

from fedstream.messaging.transaction import Transaction
from fedstream.security.signing import key_id_of
from schemas.base import Event, derived_id
from schemas.identity import (
    BaaRegistered,
    ConsentRecorded,
    EnrolParticipant,
    IdentityRefused,
    ParticipantEnrolled,
    ParticipantKeyRevoked,
    RecordConsent,
    RegisterBaa,
    RevokeParticipantKey,
)
from schemas.topics import REGISTRY


@dataclass(frozen=True)
class Enrolment:
    participant_id: str
    organisation: str
    baa_reference: str | None


@dataclass(frozen=True)
class EnrolledKey:
    key_id: str
    participant_id: str
    public_key: str
    revoked: bool = False


class IdentityStore(Protocol):
    async def enrolment(self, participant_id: str) -> Enrolment | None: ...

    async def save_enrolment(self, enrolment: Enrolment) -> None: ...

    async def key(self, key_id: str) -> EnrolledKey | None: ...

    async def save_key(self, key: EnrolledKey) -> None: ...

    async def revoke_key(self, key_id: str, reason: str) -> None: ...

    async def save_consent(self, command: RecordConsent) -> None: ...

    async def save_baa(self, command: RegisterBaa) -> None: ...


class Refused(Exception):
    """A command that contradicts what the registry knows; answered with ``IdentityRefused``."""


# --- decisions (pure) ------------------------------------------------------------------------------


def decide_enrolment(command: EnrolParticipant, enrolled: Enrolment | None, key: EnrolledKey | None) -> tuple[Enrolment, EnrolledKey]:
    key_id = key_id_of(command.public_key)
    if enrolled is not None and enrolled.organisation != command.organisation:
        raise Refused(f"{command.participant_id!r} is enrolled under {enrolled.organisation!r}, not {command.organisation!r}")
    if key is not None and key.participant_id != command.participant_id:
        raise Refused(f"key {key_id} is enrolled for another participant")
    if key is not None and key.revoked:
        raise Refused(f"key {key_id} was revoked; enrol a new key")
    baa = command.baa_reference or (enrolled.baa_reference if enrolled else None)
    return Enrolment(command.participant_id, command.organisation, baa), EnrolledKey(key_id, command.participant_id, command.public_key)


def decide_revocation(command: RevokeParticipantKey, key: EnrolledKey | None) -> EnrolledKey:
    if key is None or key.participant_id != command.participant_id:
        raise Refused(f"{command.participant_id!r} has no key {command.key_id}")
    return replace(key, revoked=True)


# --- handlers --------------------------------------------------------------------------------------


class IdentityHandlers:
    def __init__(self, store_for: Callable[[Transaction], IdentityStore]) -> None:
        self.store_for = store_for

    def table(self) -> dict[type, Callable]:
        return {
            EnrolParticipant: self._refusable(self.on_enrol),
            RevokeParticipantKey: self._refusable(self.on_revoke),
            RecordConsent: self._refusable(self.on_consent),
            RegisterBaa: self._refusable(self.on_baa),
        }

    @staticmethod
    def _refusable(decide: Callable) -> Callable:
        async def handle(command: Event, tx: Transaction) -> None:
            try:
                await decide(command, tx)
            except Refused as refusal:
                tx.emit(IdentityRefused(
                    event_id=derived_id(command.event_id, "refused"), source=REGISTRY, federation_id=command.federation_id,
                    command_id=str(command.event_id), reason=str(refusal),
                ))

        return handle

    async def on_enrol(self, command: EnrolParticipant, tx: Transaction) -> None:
        store = self.store_for(tx)
        key_id = key_id_of(command.public_key)
        enrolment, key = decide_enrolment(command, await store.enrolment(command.participant_id), await store.key(key_id))
        await store.save_enrolment(enrolment)
        await store.save_key(key)
        tx.emit(ParticipantEnrolled(
            event_id=derived_id("enrolled", key_id), source=REGISTRY, federation_id=enrolment.organisation,
            participant_id=key.participant_id, organisation=enrolment.organisation, key_id=key_id,
            public_key=key.public_key, baa_reference=enrolment.baa_reference,
        ))

    async def on_revoke(self, command: RevokeParticipantKey, tx: Transaction) -> None:
        store = self.store_for(tx)
        revoked = decide_revocation(command, await store.key(command.key_id))
        enrolment = await store.enrolment(command.participant_id)
        assert enrolment is not None, "a key is only stored with its enrolment"
        await store.revoke_key(revoked.key_id, command.reason)
        tx.emit(ParticipantKeyRevoked(
            event_id=derived_id("revoked", revoked.key_id), source=REGISTRY, federation_id=enrolment.organisation,
            participant_id=command.participant_id, key_id=revoked.key_id, reason=command.reason,
        ))

    async def on_consent(self, command: RecordConsent, tx: Transaction) -> None:
        store = self.store_for(tx)
        enrolment = await store.enrolment(command.participant_id)
        if enrolment is None:
            raise Refused(f"{command.participant_id!r} is not enrolled")
        await store.save_consent(command)
        tx.emit(ConsentRecorded(
            event_id=derived_id(command.event_id, "consent"), source=REGISTRY, federation_id=enrolment.organisation,
            participant_id=command.participant_id, purpose=command.purpose, scope=command.scope,
            expires_at=command.expires_at, granted=command.granted,
        ))

    async def on_baa(self, command: RegisterBaa, tx: Transaction) -> None:
        await self.store_for(tx).save_baa(command)
        tx.emit(BaaRegistered(
            event_id=derived_id(command.event_id, "baa"), source=REGISTRY, federation_id=command.organisation,
            organisation=command.organisation, reference=command.reference, expires_at=command.expires_at,
            active=command.active,
        ))


# --- adapters --------------------------------------------------------------------------------------


class PostgresIdentityStore:
    """Tables of infra/migrations/014_identity.sql."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def enrolment(self, participant_id: str) -> Enrolment | None:
        row = await self.conn.fetchrow(
            "SELECT participant_id, organisation, baa_reference FROM participant_enrolments WHERE participant_id = $1 FOR UPDATE",
            participant_id,
        )
        return None if row is None else Enrolment(**dict(row))

    async def save_enrolment(self, e: Enrolment) -> None:
        await self.conn.execute(
            "INSERT INTO participant_enrolments (participant_id, organisation, baa_reference) VALUES ($1,$2,$3) "
            "ON CONFLICT (participant_id) DO UPDATE SET baa_reference = excluded.baa_reference",
            e.participant_id, e.organisation, e.baa_reference,
        )

    async def key(self, key_id: str) -> EnrolledKey | None:
        row = await self.conn.fetchrow(
            "SELECT key_id, participant_id, public_key, revoked_at IS NOT NULL AS revoked FROM participant_keys WHERE key_id = $1",
            key_id,
        )
        return None if row is None else EnrolledKey(**dict(row))

    async def save_key(self, k: EnrolledKey) -> None:
        await self.conn.execute(
            "INSERT INTO participant_keys (key_id, participant_id, public_key) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
            k.key_id, k.participant_id, k.public_key,
        )

    async def revoke_key(self, key_id: str, reason: str) -> None:
        await self.conn.execute(
            "UPDATE participant_keys SET revoked_at = coalesce(revoked_at, now()), revoked_reason = $2 WHERE key_id = $1",
            key_id, reason,
        )

    async def save_consent(self, c: RecordConsent) -> None:
        await self.conn.execute(
            "INSERT INTO participant_consents (participant_id, purpose, scope, expires_at, granted, recorded_at) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (participant_id, purpose, scope) DO UPDATE SET "
            "expires_at = excluded.expires_at, granted = excluded.granted, recorded_at = excluded.recorded_at",
            c.participant_id, c.purpose, c.scope, c.expires_at, c.granted, c.time,
        )

    async def save_baa(self, b: RegisterBaa) -> None:
        await self.conn.execute(
            "INSERT INTO baa_registry (organisation, reference, expires_at, active, recorded_at) VALUES ($1,$2,$3,$4,$5) "
            "ON CONFLICT (organisation) DO UPDATE SET reference = excluded.reference, expires_at = excluded.expires_at, "
            "active = excluded.active, recorded_at = excluded.recorded_at",
            b.organisation, b.reference, b.expires_at, b.active, b.time,
        )


class InMemoryIdentityStore:
    def __init__(self) -> None:
        self.enrolments: dict[str, Enrolment] = {}
        self.keys: dict[str, EnrolledKey] = {}
        self.consents: dict[tuple[str, str, str], RecordConsent] = {}
        self.baas: dict[str, RegisterBaa] = {}

    async def enrolment(self, participant_id: str) -> Enrolment | None:
        return self.enrolments.get(participant_id)

    async def save_enrolment(self, enrolment: Enrolment) -> None:
        self.enrolments[enrolment.participant_id] = enrolment

    async def key(self, key_id: str) -> EnrolledKey | None:
        return self.keys.get(key_id)

    async def save_key(self, key: EnrolledKey) -> None:
        self.keys.setdefault(key.key_id, key)

    async def revoke_key(self, key_id: str, reason: str) -> None:
        self.keys[key_id] = replace(self.keys[key_id], revoked=True)

    async def save_consent(self, command: RecordConsent) -> None:
        self.consents[(command.participant_id, command.purpose, command.scope)] = command

    async def save_baa(self, command: RegisterBaa) -> None:
        self.baas[command.organisation] = command


def postgres_store(tx: Transaction) -> IdentityStore:
    """The registry's transaction connection, shared with its other repository."""
    return PostgresIdentityStore(tx.repo.conn)
