from __future__ import annotations

from services.compliance.domain import AuditRow


class InMemoryAuditRepository:
    def __init__(self) -> None:
        self.rows: list[AuditRow] = []

    async def lock_head(self) -> AuditRow | None:
        return self.rows[-1] if self.rows else None

    async def append(self, row: AuditRow) -> None:
        self.rows.append(row)
