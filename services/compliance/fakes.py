from __future__ import annotations

from services.compliance.checkpoints import Checkpoint
from services.compliance.domain import AuditRow


class InMemoryAuditRepository:
    def __init__(self) -> None:
        self.rows: list[AuditRow] = []
        self.checkpoints: list[Checkpoint] = []

    async def lock_head(self) -> AuditRow | None:
        return self.rows[-1] if self.rows else None

    async def append(self, row: AuditRow) -> None:
        self.rows.append(row)

    async def flush(self) -> None:
        """Nothing to write: appended rows are in place already."""

    async def rows_after(self, seq: int) -> list[AuditRow]:
        return [r for r in self.rows if r.seq > seq]

    async def has_rows_after(self, seq: int, other_than: str) -> bool:
        return any(r.seq > seq and r.entry.event_type != other_than for r in self.rows)

    async def lock_latest_checkpoint(self) -> Checkpoint | None:
        return max(self.checkpoints, key=lambda c: c.tree_size, default=None)

    async def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        if any(c.tree_size == checkpoint.tree_size for c in self.checkpoints):
            return False
        self.checkpoints.append(checkpoint)
        return True
