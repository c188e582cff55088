"""Running sums per round, folded in as each counted update commits, so closing a round does not
start by reading every update of it.

This is a cache, never the truth: folds happen only after the contribution's transaction committed,
and at close the sum is completed (or rebuilt) from the blobs of exactly the contributions the
database counted. A restarted or rebalanced aggregator simply starts without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from fedstream.storage import tensors
from fedstream.storage.blobs import BlobStore
from services.aggregation.fedavg import RunningWeightedSum, Weights
from services.aggregation.ports import StoredContribution

RoundKey = tuple[str, int]


@dataclass
class _Partial:
    running: RunningWeightedSum = field(default_factory=RunningWeightedSum)
    folded: set[UUID] = field(default_factory=set)
    pending: list[asyncio.Task[None]] = field(default_factory=list)


class PartialAggregates:
    def __init__(self, blobs: BlobStore, concurrency: int = 4, read_ahead: int = 8) -> None:
        self.blobs, self.read_ahead = blobs, read_ahead
        self._rounds: dict[RoundKey, _Partial] = {}
        self._slots = asyncio.Semaphore(concurrency)

    def fold_later(self, key: RoundKey, contribution: StoredContribution) -> None:
        """Called once the contribution is committed; the fold runs in the background."""
        partial = self._rounds.setdefault(key, _Partial())
        partial.pending.append(asyncio.create_task(self._fold(partial, contribution)))

    def forget(self, key: RoundKey) -> None:
        for task in self._rounds.pop(key, _Partial()).pending:
            task.cancel()

    async def complete(self, key: RoundKey, counted: Sequence[StoredContribution]) -> Weights:
        """The weighted average of exactly ``counted``: what was folded, plus whatever was not."""
        partial = self._rounds.pop(key, None) or _Partial()
        await asyncio.gather(*partial.pending, return_exceptions=True)  # a failed fold is simply redone below
        if not partial.folded <= {c.update_id for c in counted}:
            partial = _Partial()  # cannot happen with commit-only folds; rebuild rather than trust it
        missing = [c for c in counted if c.update_id not in partial.folded]
        for start in range(0, len(missing), self.read_ahead):
            chunk = missing[start : start + self.read_ahead]
            payloads = await asyncio.gather(*(self.blobs.get(c.blob) for c in chunk))
            for c, payload in zip(chunk, payloads):
                partial.running.add(tensors.from_bytes(payload), c.num_examples)
        return partial.running.average()

    async def _fold(self, partial: _Partial, c: StoredContribution) -> None:
        async with self._slots:
            weights = tensors.from_bytes(await self.blobs.get(c.blob))
        partial.running.add(weights, c.num_examples)  # synchronous: no other fold interleaves
        partial.folded.add(c.update_id)
