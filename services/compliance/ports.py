from __future__ import annotations

from typing import Protocol

from services.compliance.domain import AuditRow


class AuditRepository(Protocol):
    async def lock_head(self) -> AuditRow | None:
        """The last row, with appends serialised until this transaction ends."""

    async def append(self, row: AuditRow) -> None: ...
