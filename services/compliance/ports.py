from __future__ import annotations

from typing import Protocol

from services.compliance.checkpoints import Checkpoint
from services.compliance.domain import AuditRow


class AuditRepository(Protocol):
    async def lock_head(self) -> AuditRow | None:
        """The last row, with appends serialised until this transaction ends."""

    async def append(self, row: AuditRow) -> None:
        """Chain ``row`` on; it may be written only at ``flush`` (which the handler runs before commit)."""

    async def flush(self) -> None:
        """Write what ``append`` kept back."""

    async def rows_after(self, seq: int) -> list[AuditRow]:
        """The rows after ``seq``, in order."""

    async def has_rows_after(self, seq: int, other_than: str) -> bool:
        """Whether any row after ``seq`` records an event of a type other than ``other_than``."""

    async def lock_latest_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint, with checkpointing serialised until this transaction ends."""

    async def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store it; False if a checkpoint of that size already exists."""
