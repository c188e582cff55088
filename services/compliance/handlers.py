from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from fedstream.messaging.transaction import Transaction
from schemas.compliance import EraseParticipant
from services.compliance.erasure import ErasureServices, audit_source, complete_shredding, erase
from services.compliance.domain import AuditEntry, chain
from services.compliance.ports import AuditRepository
from schemas.base import Event
from schemas.registry import EVENT_TYPES

Tx = Transaction[AuditRepository]
log = logging.getLogger(__name__)


class ComplianceHandlers:
    def __init__(self, erasure: ErasureServices | None = None) -> None:
        # None: audit only, sources recorded as they come (unit tests of the chain)
        self.erasure = erasure
        self._pseudonyms: dict[str, str] = {}

    def table(self) -> dict[type, Callable]:
        table = {event_type: self.on_any_event for event_type in EVENT_TYPES.values()}
        if self.erasure is not None:
            table[EraseParticipant] = self.on_erase
        return table

    async def on_any_event(self, event: Event, tx: Tx) -> None:
        # The same event id delivered twice (redelivery, or a fact published again after a crash) never
        # gets here: the consumer's inbox claimed it; the audit trail's UNIQUE(event_id) backs that up.
        record = tx.record
        assert record is not None, "the consumer always sets the record being handled"
        entry = AuditEntry(
            event.event_id, event.TYPE, record.topic, event.federation_id, event.round_number, self._source(event.source),
            event.time,
            hashlib.sha256(record.value).hexdigest(),
        )
        # Appending is the handler's last step, so a savepoint that rolls this event back can only do so
        # before the row (and the repository's remembered head) changed.
        await tx.repo.append(chain(await tx.repo.lock_head(), entry))
        tx.before_commit(tx.repo.flush)  # the batch's rows go in one statement

    def _source(self, source: str) -> str:
        """The append-only trail never holds a participant's id: it records its keyed pseudonym instead, so
        destroying the participant's key at erasure unlinks every row (services/compliance/erasure.py)."""
        if self.erasure is None:
            return source
        return audit_source(source, self._pseudonym)

    def _pseudonym(self, participant_id: str) -> str:
        if participant_id not in self._pseudonyms:
            self._pseudonyms[participant_id] = self.erasure.keys.pseudonym(participant_id)
        return self._pseudonyms[participant_id]

    async def on_erase(self, command: EraseParticipant, tx: Tx) -> None:
        e = self.erasure
        outcome = await erase(command, e.keys, e.store(tx.repo), e.coordination, e.kafka, e.clock())
        if outcome is None:
            log.info("erasure %s: the participant was already erased", command.event_id)
        else:
            for fact in outcome.facts:
                tx.emit(fact)
            tx.emit(outcome.certificate)
            participant_id = command.participant_id
            tx.after_commit(lambda: self._shred(participant_id))
        await self.on_any_event(command, tx)  # audited last, like every event (see on_any_event)

    def _shred(self, participant_id: str) -> None:
        """After commit (a rolled-back erasure must still find the key to compute the pseudonym again): the
        key goes at once; ``shred_pending`` then records it — or destroys it, if this failed or never ran."""
        self._pseudonyms.pop(participant_id, None)
        try:
            self.erasure.keys.destroy(participant_id)
        except Exception:
            log.exception("an erasure committed but its key was not destroyed yet: the shredding timer retries")

    async def shred_pending(self, transactions) -> None:  # noqa: ANN001 - a Transactions[AuditRepository]
        """Timer (and at start): destroy every key a committed erasure left due, and record when."""
        if self.erasure is None:
            return
        e = self.erasure
        async with transactions.begin() as tx:
            done = await complete_shredding(e.keys, e.store(tx.repo), e.clock())
        for d in done:
            self._pseudonyms.pop(d.participant_id, None)
            log.info("erasure of %s: the participant's key is destroyed", d.pseudonym)
