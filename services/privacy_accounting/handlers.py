from __future__ import annotations

from collections.abc import Callable

from fedstream.messaging.transaction import Transaction
from services.privacy_accounting.domain import Accountant
from services.privacy_accounting.ports import LedgerRepository
from schemas.base import derived_id
from schemas.events import PrivacyCharged, UpdateAccepted
from schemas.topics import PRIVACY


class PrivacyHandlers:
    def __init__(self, accountant: Accountant) -> None:
        self.accountant = accountant

    def table(self) -> dict[type, Callable]:
        return {UpdateAccepted: self.on_accepted}

    async def on_accepted(self, event: UpdateAccepted, tx: Transaction[LedgerRepository]) -> None:
        charge = self.accountant.charge(event)
        if not await tx.repo.record(charge):
            return  # already charged under another delivery: charge at most once, forward at most once
        tx.emit(
            PrivacyCharged(
                event_id=derived_id(event.update_id, "charged"), source=PRIVACY, federation_id=event.federation_id,
                update_id=event.update_id, participant_id=event.participant_id, round=event.round,
                update=event.update, num_examples=event.num_examples, epsilon=charge.epsilon, delta=charge.delta,
            )
        )
