"""Only a participant's own, fresh, first-time messages count: heartbeats and evaluation reports are verified
(``fedstream.security.message_auth``) against validation's own projection of the identity topic before any
handler sees them. A forged evaluation report could otherwise get a candidate released or rejected, and a
forged heartbeat fake a participant joining.

A refused message reaches no handler; it is logged, counted in ``fedstream_messages_refused_total`` and
handed to ``on_refused`` (the alert processor: a hostile refused report counts toward a security breach).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from fedstream.messaging.consumer import Handler
from fedstream.messaging.transaction import Transaction
from fedstream.observability import metrics
from fedstream.security import message_auth
from fedstream.security.message_auth import Refusal, Refused
from services.validation.ports import KeyRepository, ParticipantKey
from schemas.base import Event, utcnow
from schemas.events import EvaluationReported, ParticipantHeartbeat
from schemas.identity import ParticipantEnrolled, ParticipantKeyRevoked
from schemas.topics import EVALUATIONS, HEARTBEATS, VALIDATION, Topic

log = logging.getLogger(__name__)
Tx = Transaction[KeyRepository]
RefusalObserver = Callable[[Event, Refused, Transaction], Awaitable[None]]
# The participant messages validation acts on, with the topic each is signed for.
SIGNED: dict[type[Event], Topic] = {ParticipantHeartbeat: HEARTBEATS, EvaluationReported: EVALUATIONS}


class SenderCheck:
    def __init__(
        self, clock: Callable[[], datetime] = utcnow, freshness_s: float = 300.0, on_refused: RefusalObserver | None = None,
    ) -> None:
        # ``freshness_s``: accepted clock skew either way between the signer and us; nonces are kept twice as long
        self.clock, self.window, self.on_refused = clock, timedelta(seconds=freshness_s), on_refused

    def table(self) -> dict[type, Callable]:
        return {ParticipantEnrolled: self.on_enrolled, ParticipantKeyRevoked: self.on_key_revoked}

    def guard(self, table: Mapping[type[Event], Handler]) -> dict[type[Event], Handler]:
        """``table`` with the handler of each signed message type run only for a message that verifies."""
        return {t: self._verified_only(h) if t in SIGNED else h for t, h in table.items()}

    def _verified_only(self, handler: Handler) -> Handler:
        async def verified_only(event: Event, tx: Tx) -> None:
            refused = await self.verify(event, tx)
            if refused is None:
                await handler(event, tx)
            else:
                await self._refuse(event, refused, tx)

        return verified_only

    async def verify(self, event: Event, tx: Tx) -> Refused | None:
        """None if ``event`` is authentic (see ``message_auth.authenticate``) and its nonce unused until now."""
        key_id = message_auth.key_id_of(event)
        key = await tx.repo.key(key_id) if key_id is not None else None
        refused = message_auth.authenticate(event, SIGNED[type(event)].name, key, self.clock(), self.window)
        if refused is not None:
            return refused
        # Claimed only once the signature holds, so an impostor cannot burn a participant's nonces; in the
        # handler's transaction, so a batch that rolls back releases it, and a retry (same event) keeps it.
        sig = event.signature  # type: ignore[attr-defined] - authenticate checked it is there
        if not await tx.repo.use_nonce(sig.key_id, sig.nonce, event.event_id, sig.signed_at):
            return Refused(Refusal.REPLAYED, f"nonce {sig.nonce} of key {sig.key_id} was already used")
        return None

    async def _refuse(self, event: Event, refused: Refused, tx: Tx) -> None:
        log.warning("refused a %s claiming %r in %r: %s (%s)", type(event).__name__, getattr(event, "participant_id", None),
                    event.federation_id, refused.reason.value, refused.detail)
        labels = {"service": VALIDATION, "type": event.TYPE, "reason": refused.reason.value}
        tx.after_commit(lambda: metrics.messages_refused.add(1, labels))  # once, however often the batch is retried
        if self.on_refused is not None:
            await self.on_refused(event, refused, tx)

    async def forget_old_nonces(self, transactions) -> None:  # noqa: ANN001 - a Transactions[KeyRepository]
        """Timer: nonces of messages that would be refused as stale anyway need not be kept."""
        async with transactions.begin() as tx:
            await tx.repo.forget_nonces(self.clock() - 2 * self.window)

    # --- the key projection (facts from fedstream.identity) -----------------------------------------------

    async def on_enrolled(self, event: ParticipantEnrolled, tx: Tx) -> None:
        await tx.repo.save_key(ParticipantKey(event.key_id, event.participant_id, event.organisation, event.public_key))

    async def on_key_revoked(self, event: ParticipantKeyRevoked, tx: Tx) -> None:
        await tx.repo.revoke_key(event.key_id)
