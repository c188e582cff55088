from __future__ import annotations

import hashlib
from collections.abc import Callable

from fedstream.messaging.transaction import Transaction
from services.compliance.domain import AuditEntry, chain
from services.compliance.ports import AuditRepository
from schemas.base import Event
from schemas.registry import EVENT_TYPES

Tx = Transaction[AuditRepository]


class ComplianceHandlers:
    def table(self) -> dict[type, Callable]:
        return {event_type: self.on_any_event for event_type in EVENT_TYPES.values()}

    async def on_any_event(self, event: Event, tx: Tx) -> None:
        # The same event id delivered twice (redelivery, or a fact published again after a crash) never
        # gets here: the consumer's inbox claimed it; the audit trail's UNIQUE(event_id) backs that up.
        record = tx.record
        assert record is not None, "the consumer always sets the record being handled"
        entry = AuditEntry(
            event.event_id, event.TYPE, record.topic, event.federation_id, event.round_number, event.source, event.time,
            hashlib.sha256(record.value).hexdigest(),
        )
        # Appending is the handler's last step, so a savepoint that rolls this event back can only do so
        # before the row (and the repository's remembered head) changed.
        await tx.repo.append(chain(await tx.repo.lock_head(), entry))
