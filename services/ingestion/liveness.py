"""Participant liveness: a heartbeat counts only if its participant signed it, recently, and once.

A forged heartbeat would make a silent (or unknown) participant look live; a replayed one would keep a
departed participant live. Both are refused before anything is recorded: not counted as liveness,
counted in ``fedstream_messages_refused_total`` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from fedstream.messaging.transaction import Transaction
from fedstream.observability import metrics
from fedstream.security import message_auth
from fedstream.security.message_auth import Refusal, Refused
from fedstream.storage.coordination import Coordination
from services.ingestion.domain import FederationView
from services.ingestion.identity import IdentityPolicy
from services.ingestion.ports import AdmissionRepository
from schemas.base import utcnow
from schemas.events import ParticipantHeartbeat
from schemas.topics import HEARTBEATS, INGESTION

log = logging.getLogger(__name__)
Tx = Transaction[AdmissionRepository]
FederationLookup = Callable[[str, Tx], Awaitable[FederationView | None]]


class Liveness:
    def __init__(
        self, coordination: Coordination, federation: FederationLookup, clock: Callable[[], datetime] = utcnow,
        policy: IdentityPolicy = IdentityPolicy(),
    ) -> None:
        # ``federation``: the handlers' (cached) lookup of a federation's admission facts
        self.coordination, self.federation, self.clock, self.policy = coordination, federation, clock, policy

    async def on_heartbeat(self, event: ParticipantHeartbeat, tx: Tx) -> None:
        refused = await self._authenticate(event, tx)
        if refused is not None:
            _refuse(event, refused, tx)
            return
        federation = await self.federation(event.federation_id, tx)
        if federation is None:
            return
        await self.coordination.record_heartbeat(event.federation_id, event.participant_id, event.ttl_s)
        live = await self.coordination.live_participants(event.federation_id)
        labels = {"federation": event.federation_id}
        metrics.live_participants.set(len(live & federation.participants), labels)
        metrics.expected_participants.set(len(federation.participants), labels)

    async def _authenticate(self, event: ParticipantHeartbeat, tx: Tx) -> Refused | None:
        key_id = message_auth.key_id_of(event)
        key = (await tx.repo.keys([key_id])).get(key_id) if key_id is not None else None
        refused = message_auth.authenticate(event, HEARTBEATS.name, key, self.clock(), self.policy.window)
        if refused is not None:
            return refused
        # Claimed only once the signature holds (an impostor cannot burn a participant's nonces). The owner is
        # the event id: a redelivered batch is not its own replay. Redis alone is enough here: liveness itself
        # lives in Redis, so a flush that forgets nonces forgets liveness too.
        nonce = message_auth.nonce_of(event)
        if not await self.coordination.claim_nonce(nonce, str(event.event_id), 2 * self.policy.freshness_s):
            return Refused(Refusal.REPLAYED, f"nonce {nonce} was already used")
        return None


def _refuse(event: ParticipantHeartbeat, refused: Refused, tx: Tx) -> None:
    log.warning("refused a heartbeat claiming %r in %r: %s (%s)", event.participant_id, event.federation_id,
                refused.reason.value, refused.detail)
    labels = {"service": INGESTION, "type": event.TYPE, "reason": refused.reason.value}
    tx.after_commit(lambda: metrics.messages_refused.add(1, labels))  # once, however often the batch is retried
