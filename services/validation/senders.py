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
from uuid import UUID

from fedstream.messaging.consumer import Handler
from fedstream.messaging.transaction import Transaction
from fedstream.observability import metrics
from fedstream.security import message_auth
from fedstream.security.message_auth import Refusal, Refused
from services.validation.ports import KeyRepository, NonceClaim, ParticipantKey
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
        self._batch: list[Event] = []
        self._verdicts: dict[UUID, Refused | None] = {}
        self._judged_in: Tx | None = None  # the transaction the verdicts were taken in

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

    async def prefetch(self, events: list[Event]) -> None:
        """The consumer's batch hook: its signed messages are judged together at the first one's turn."""
        self._batch = [e for e in events if type(e) in SIGNED]
        self._verdicts = {}

    async def verify(self, event: Event, tx: Tx) -> Refused | None:
        """None if ``event`` is authentic (see ``message_auth.authenticate``) and its nonce unused until now."""
        if self._judged_in is not tx or event.event_id not in self._verdicts:
            await self._judge([event, *self._batch], tx)
        return self._verdicts.pop(event.event_id)

    async def _judge(self, events: list[Event], tx: Tx) -> None:
        """One key lookup and one nonce claim for all ``events`` not judged yet in this transaction: a batch of
        evaluation reports (one per participant, on the close → release path) costs two round trips, not two each.
        Verdicts belong to the transaction that took them (a rolled-back one took its nonce claims with it)."""
        if self._judged_in is not tx:
            self._judged_in, self._verdicts = tx, {}
        pending = list({e.event_id: e for e in events if e.event_id not in self._verdicts}.values())
        self._batch = []
        keys = await tx.repo.keys({k for e in pending if (k := message_auth.key_id_of(e)) is not None})
        now, authentic = self.clock(), []
        for e in pending:
            key_id = message_auth.key_id_of(e)
            refused = message_auth.authenticate(e, SIGNED[type(e)].name, keys.get(key_id) if key_id else None, now, self.window)
            self._verdicts[e.event_id] = refused
            if refused is None:
                authentic.append(e)
        # Claimed only once the signature holds, so an impostor cannot burn a participant's nonces; in the
        # handler's transaction, so a batch that rolls back releases them, and a retry (same event) keeps them.
        held = await tx.repo.use_nonces([
            NonceClaim(e.signature.key_id, e.signature.nonce, e.event_id, e.signature.signed_at)  # type: ignore[attr-defined]
            for e in authentic
        ])
        for e in authentic:
            if e.event_id not in held:
                sig = e.signature  # type: ignore[attr-defined]
                self._verdicts[e.event_id] = Refused(Refusal.REPLAYED, f"nonce {sig.nonce} of key {sig.key_id} was already used")

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
        self._verdicts = {}  # verdicts taken ahead knew the keys as they were: judge the rest again
        await tx.repo.save_key(ParticipantKey(event.key_id, event.participant_id, event.organisation, event.public_key))

    async def on_key_revoked(self, event: ParticipantKeyRevoked, tx: Tx) -> None:
        self._verdicts = {}
        await tx.repo.revoke_key(event.key_id)
