"""Σ weightₖ·ciphertextₖ over many encrypted updates, split across worker processes.

Deserialising SEAL ciphertexts and adding them is CPU-bound and holds the GIL, so the aggregator
spreads a round over processes: each worker reads its share of the blobs itself (only blob references
cross the process boundary, never megabytes of ciphertext), loads the public context once, and returns
one partial sum; the parent adds the few partials. Both summers below hold only public contexts.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from fedstream.crypto import he
from fedstream.storage.blobs import BlobStore
from schemas.base import BlobRef

StoreFactory = Callable[[], BlobStore]  # picklable (e.g. functools.partial(open_blob_store, url))


@dataclass(frozen=True)
class SumRequest:
    context: BlobRef  # the public context; its SHA-256 is the fingerprint every ciphertext must name
    length: int  # values per update
    items: tuple[tuple[BlobRef, float | int], ...]  # (ciphertext blob, plaintext weight)


class InProcessSummer:
    """One process, off the event loop: for tests and small rounds."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._contexts: dict[str, he.FederationContext] = {}

    async def weighted_sum(self, request: SumRequest) -> bytes:
        fc = await self._context(request.context)
        blobs = await asyncio.gather(*(self.blobs.get(ref) for ref, _ in request.items))
        weights = [w for _, w in request.items]
        return await asyncio.to_thread(he.weighted_sum, fc, blobs, weights, request.length)

    async def _context(self, ref: BlobRef) -> he.FederationContext:
        if ref.sha256 not in self._contexts:
            self._contexts[ref.sha256] = he.load_public_context(await self.blobs.get(ref))
        return self._contexts[ref.sha256]


class ProcessPoolSummer:
    """``workers`` processes (spawned, not forked: the parent runs Kafka clients and an event loop)."""

    def __init__(self, store_factory: StoreFactory, workers: int = 2) -> None:
        self.store_factory, self.workers = store_factory, workers
        self._pool: ProcessPoolExecutor | None = None
        self._local = InProcessSummer(store_factory())

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.store_factory,),
            )
        return self._pool

    async def weighted_sum(self, request: SumRequest) -> bytes:
        shares = _split(request.items, self.workers)
        if len(shares) == 1:
            return await self._local.weighted_sum(request)
        loop = asyncio.get_running_loop()
        pool = self._executor()
        partials = await asyncio.gather(
            *(loop.run_in_executor(pool, _partial_sum, request.context, request.length, share) for share in shares)
        )
        fc = await self._local._context(request.context)
        return await asyncio.to_thread(he.add_sums, fc, partials, request.length)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _split(items: Sequence, parts: int) -> list[tuple]:
    """Contiguous, nearly equal shares; never an empty one."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        out.append(tuple(items[start:end]))
        start = end
    return out


# --- worker side -------------------------------------------------------------------------------

_worker: dict = {}


def _init_worker(store_factory: StoreFactory) -> None:
    _worker["loop"] = asyncio.new_event_loop()
    _worker["store"] = store_factory()
    _worker["contexts"] = {}


def _read(ref: BlobRef) -> bytes:
    return _worker["loop"].run_until_complete(_worker["store"].get(ref))


def _partial_sum(context: BlobRef, length: int, items: tuple[tuple[BlobRef, float | int], ...]) -> bytes:
    contexts: dict[str, he.FederationContext] = _worker["contexts"]
    if context.sha256 not in contexts:
        contexts[context.sha256] = he.load_public_context(_read(context))
    fc = contexts[context.sha256]
    return he.weighted_sum(fc, (_read(ref) for ref, _ in items), [w for _, w in items], length)
