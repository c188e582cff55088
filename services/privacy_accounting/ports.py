from __future__ import annotations

from typing import Protocol

from services.privacy_accounting.domain import Charge


class LedgerRepository(Protocol):
    async def record(self, charge: Charge) -> bool:
        """Insert the charge; False if this update was already charged (idempotent by update id)."""
