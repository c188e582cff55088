from __future__ import annotations

from uuid import UUID

from services.privacy_accounting.domain import Charge


class InMemoryLedgerRepository:
    def __init__(self) -> None:
        self.charges: dict[UUID, Charge] = {}

    async def record(self, charge: Charge) -> bool:
        if charge.update_id in self.charges:
            return False
        self.charges[charge.update_id] = charge
        return True
