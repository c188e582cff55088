"""A participant's identity, automatically: its Ed25519 key (kept under the state dir, 0600), its
enrolment with the registry, and a signature on every submission.

``fedstream simulate``, the benchmarks and the tests enrol their simulated participants through the
same commands an operator would issue (``fedstream participant enrol``, ``fedstream consent``,
``fedstream baa``), then wait until ingestion has seen the resulting facts before submitting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedstream.messaging.codec import MalformedMessage, decode, encode
from fedstream.messaging.consumer import to_record
from fedstream.messaging.kafka import client_security, make_producer, send_records, wait_caught_up
from fedstream.security import keyfiles, signing
from fedstream.settings import Endpoints
from schemas.base import Event, utcnow
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
from schemas.topics import COMMANDS, IDENTITY, INGESTION, OPERATOR, VALIDATION, topic_for

E = TypeVar("E", bound=Event)
SIMULATED_BAA = "simulated-baa"
# Services that check participants' signatures against their own projection of the identity topic: a
# participant may publish once each has seen its key, or its first messages would be refused as unknown.
VERIFIERS = (INGESTION, VALIDATION)


@dataclass
class ParticipantKeys:
    """Each local participant's private key: from ``directory`` (created there on first use), or held in
    memory only when ``directory`` is None."""

    directory: Path | None = None
    keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict)

    def key(self, participant_id: str) -> Ed25519PrivateKey:
        if participant_id not in self.keys:
            if self.directory is None:
                self.keys[participant_id] = signing.generate_key()
            else:
                self.keys[participant_id], _ = keyfiles.load_or_create(keyfiles.key_path(self.directory, participant_id))
        return self.keys[participant_id]

    def public_key(self, participant_id: str) -> str:
        return signing.public_key_text(self.key(participant_id))

    def sign(self, event: E, now: datetime | None = None) -> E:
        """Sign a participant's message (submission, heartbeat, evaluation report) as its participant
        (``event.participant_id``) for the topic it travels on."""
        return signing.sign(event, topic_for(type(event)).name, self.key(event.participant_id), now or utcnow())


def default_keys() -> ParticipantKeys:
    """Keys under the state dir (``FEDSTREAM_STATE_DIR``, default ./.fedstream/keys/participants/<id>.pem)."""
    from fedstream.settings import StackSettings

    return ParticipantKeys(keyfiles.keys_dir(StackSettings().state_dir))


def enrolment_commands(
    participant_id: str, organisation: str, public_key: str, valid_for: timedelta = timedelta(days=365),
    scope: str = "*", requested_by: str = "simulation",
) -> list[Event]:
    """What an operator issues to let a participant submit: enrol its key, record its consent to
    federated training, and register its organisation's business-associate agreement."""
    expires = utcnow() + valid_for
    return [
        EnrolParticipant(source=OPERATOR, federation_id=organisation, participant_id=participant_id, organisation=organisation,
                         public_key=public_key, baa_reference=SIMULATED_BAA, requested_by=requested_by),
        RecordConsent(source=OPERATOR, federation_id=organisation, participant_id=participant_id, scope=scope,
                      expires_at=expires, requested_by=requested_by),
        RegisterBaa(source=OPERATOR, federation_id=organisation, organisation=organisation, reference=SIMULATED_BAA,
                    expires_at=expires, requested_by=requested_by),
    ]


class EnrolmentRefused(RuntimeError):
    """The registry refused an enrolment command (e.g. the participant belongs to another organisation)."""


async def enrol(endpoints: Endpoints, participants: Iterable[tuple[str, str]], keys: ParticipantKeys, timeout: float = 120) -> None:
    """Enrol (participant, organisation) pairs and wait until ingestion has projected every fact."""
    commands = [c for pid, org in participants for c in enrolment_commands(pid, org, keys.public_key(pid))]
    await issue(endpoints, commands, timeout)


async def issue(endpoints: Endpoints, commands: list[Event], timeout: float = 120) -> None:
    """Publish identity commands, wait for the registry's facts, then for every service that verifies
    participants' signatures (ingestion, validation) to have projected them. Raises ``EnrolmentRefused``
    with the registry's reasons if it refused any."""
    async with _IdentityWatch(endpoints) as watch:
        producer = make_producer(endpoints, "fedstream-enrolment")
        await producer.start()
        try:
            await send_records(producer, [encode(c, COMMANDS.name) for c in commands])
        finally:
            await producer.stop()
        await watch.wait_for(commands, timeout)
    for service in VERIFIERS:
        await wait_caught_up(endpoints, f"fedstream-{service}", (IDENTITY,), timeout)


class _IdentityWatch:
    """Reads the identity topic from its current end: the facts answering our commands."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=endpoints.kafka_bootstrap_servers, enable_auto_commit=False, **client_security(endpoints)
        )
        self.seen: list[Event] = []

    async def __aenter__(self) -> "_IdentityWatch":
        await self.consumer.start()
        partitions = [TopicPartition(IDENTITY.name, p) for p in range(IDENTITY.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # fix the start offsets now, before our commands can be answered
            await self.consumer.position(tp)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def wait_for(self, commands: list[Event], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._answered(commands):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the registry did not answer {len(commands)} enrolment commands within {timeout}s")
            batches = await self.consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for m in messages:
                    try:
                        self.seen.append(decode(to_record(m)))
                    except MalformedMessage:
                        continue

    def _answered(self, commands: list[Event]) -> bool:
        refused = [e for e in self.seen if isinstance(e, IdentityRefused) and e.command_id in {str(c.event_id) for c in commands}]
        if refused:
            raise EnrolmentRefused("; ".join(e.reason for e in refused))
        enrolled = {e.key_id for e in self.seen if isinstance(e, ParticipantEnrolled)}
        revoked = {e.key_id for e in self.seen if isinstance(e, ParticipantKeyRevoked)}
        consents = {(e.participant_id, e.expires_at) for e in self.seen if isinstance(e, ConsentRecorded)}
        baas = {(e.organisation, e.expires_at) for e in self.seen if isinstance(e, BaaRegistered)}
        for c in commands:
            if isinstance(c, EnrolParticipant) and signing.key_id_of(c.public_key) not in enrolled:
                return False
            if isinstance(c, RecordConsent) and (c.participant_id, c.expires_at) not in consents:
                return False
            if isinstance(c, RegisterBaa) and (c.organisation, c.expires_at) not in baas:
                return False
            if isinstance(c, RevokeParticipantKey) and c.key_id not in revoked:
                return False
        return True
