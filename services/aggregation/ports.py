"""What the aggregation handlers need from storage."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from services.aggregation.domain import RoundState, RoundStatus
from schemas.events import Contribution
from schemas.base import BlobRef


class StoredContribution(Contribution):
    blob: BlobRef


class AggregationRepository(Protocol):
    async def open_round(self, state: RoundState) -> bool:
        """Insert a collecting round; False if it already existed."""

    async def lock_round(self, federation_id: str, round_number: int) -> RoundState | None:
        """The round with its received count, locked for this transaction (or None)."""

    async def add_contribution(self, federation_id: str, round_number: int, contribution: StoredContribution) -> bool:
        """Count an update once per participant and round; False if one was already counted."""

    async def contributions(self, federation_id: str, round_number: int) -> list[StoredContribution]: ...

    async def set_status(self, federation_id: str, round_number: int, status: RoundStatus, closed_by: str | None, at: datetime) -> None: ...

    async def due_rounds(self, now: datetime) -> list[tuple[str, int]]:
        """Collecting rounds whose deadline has passed."""
