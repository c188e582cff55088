"""Charges as pure values; the accountant decides what an update costs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from schemas.events import UpdateAccepted


@dataclass(frozen=True)
class Charge:
    update_id: UUID
    federation_id: str
    participant_id: str
    round: int
    mechanism: str
    epsilon: float | None
    delta: float | None
    charged_at: datetime


class Accountant(Protocol):
    def charge(self, update: UpdateAccepted) -> Charge: ...


class PlaintextAccountant:
    """No privacy mechanism was applied, so no ε is claimed: the ledger says so explicitly."""

    def charge(self, update: UpdateAccepted) -> Charge:
        return Charge(
            update.update_id, update.federation_id, update.participant_id, update.round,
            mechanism="none", epsilon=None, delta=None, charged_at=update.time,
        )
