"""The unit of work every handler runs in: state change, inbox record and outbox rows commit together.

A handler gets a ``Transaction``: its service's repository bound to this transaction (``tx.repo``),
``tx.first_delivery`` to make redelivery a no-op, and ``tx.emit`` to publish events — which only
happens if the transaction commits. ``PostgresTransactions`` is the real adapter;
``InMemoryTransactions`` is the fake for unit tests of handlers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar
from uuid import UUID

import asyncpg

from fedstream.messaging.codec import Record, encode
from fedstream.messaging.tracing import child_traceparent
from fedstream.observability.tracing import current_traceparent
from schemas.base import Event
from schemas.topics import DEAD_LETTER, topic_for

R = TypeVar("R")


@dataclass
class Transaction(Generic[R]):
    repo: R
    consumer: str
    traceparent: str | None = None
    record: Record | None = None  # the message being handled, byte for byte (the audit trail hashes it)
    outgoing: list[Record] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)  # what ``outgoing`` holds, as events (for metrics)
    # Work that may only happen once this transaction's effects are durable (e.g. warming a cache).
    committed_callbacks: list[Callable[[], None]] = field(default_factory=list)
    # Writes a repository batched up to here, done just before the commit (each registered once).
    pre_commit: dict[tuple[int, object], Callable[[], Awaitable[None]]] = field(default_factory=dict)
    _claim: Callable[[str, list[UUID]], Awaitable[set[UUID]]] | None = None

    async def first_delivery(self, event_id: UUID) -> bool:
        """Record ``event_id`` as processed by this consumer; False if it already was."""
        return event_id in await self.first_deliveries([event_id])

    async def first_deliveries(self, event_ids: list[UUID]) -> set[UUID]:
        """Record a batch of ids in one go; returns those not processed before."""
        assert self._claim is not None
        return await self._claim(self.consumer, event_ids)

    def emit(self, event: Event) -> None:
        # The handling span's context when tracing records one; else a child of the consumed record's.
        traceparent = current_traceparent() or child_traceparent(self.traceparent)
        self.outgoing.append(encode(event, topic_for(type(event)).name, traceparent))
        self.events.append(event)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.committed_callbacks.append(callback)

    def before_commit(self, flush: Callable[[], Awaitable[None]]) -> None:
        """Run ``flush`` (once, however often registered) in this transaction just before it commits."""
        # a bound method is a new object at each access: it is the same flush if its object and function are
        self.pre_commit.setdefault((id(getattr(flush, "__self__", None)), getattr(flush, "__func__", flush)), flush)

    async def run_pre_commit(self) -> None:
        for flush in self.pre_commit.values():
            await flush()

    def dead_letter(self, record: Record, error: BaseException, attempts: int) -> None:
        headers = list(record.headers) + [
            ("x-fedstream-error", _error_text(error).encode()),
            ("x-fedstream-error-class", type(error).__name__.encode()),
            ("x-fedstream-consumer", self.consumer.encode()),
            ("x-fedstream-original-topic", record.topic.encode()),
            ("x-fedstream-attempts", str(attempts).encode()),
        ]
        self.outgoing.append(Record(DEAD_LETTER.name, record.key, record.value, headers))


class Transactions(Protocol[R]):
    def begin(self, traceparent: str | None = None) -> contextlib.AbstractAsyncContextManager[Transaction[R]]: ...

    @contextlib.asynccontextmanager
    async def savepoint(self, tx: Transaction[R]) -> AsyncIterator[None]: ...


class PostgresTransactions(Generic[R]):
    def __init__(self, pool: asyncpg.Pool, service: str, repo_factory: Callable[[asyncpg.Connection], R]) -> None:
        self.pool, self.service, self.repo_factory = pool, service, repo_factory
        self._connections: dict[int, asyncpg.Connection] = {}

    @contextlib.asynccontextmanager
    async def begin(self, traceparent: str | None = None) -> AsyncIterator[Transaction[R]]:
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                tx: Transaction[R] = Transaction(self.repo_factory(conn), self.service, traceparent)
                tx._claim = lambda consumer, event_id: _claim(conn, consumer, event_id)
                self._connections[id(tx)] = conn
                try:
                    yield tx
                    await tx.run_pre_commit()
                    await write_outbox(conn, self.service, tx.outgoing)
                finally:
                    del self._connections[id(tx)]
            _run_callbacks(tx)

    @contextlib.asynccontextmanager
    async def savepoint(self, tx: Transaction[R]) -> AsyncIterator[None]:
        """Undo one message's effects (rows, emitted events, callbacks) without losing the rest of the batch."""
        mark = _mark(tx)
        try:
            async with self._connections[id(tx)].transaction():
                yield
        except BaseException:
            _rewind(tx, mark)
            raise


async def _claim(conn: asyncpg.Connection, consumer: str, event_ids: list[UUID]) -> set[UUID]:
    rows = await conn.fetch(
        "INSERT INTO processed_messages (consumer, event_id) SELECT $1, unnest($2::uuid[]) "
        "ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        event_ids,
    )
    return {r["event_id"] for r in rows}


async def write_outbox(conn: asyncpg.Connection, service: str, records: list[Record]) -> None:
    if not records:
        return
    await conn.executemany(
        "INSERT INTO outbox (service, topic, key, value, header_keys, header_values) VALUES ($1,$2,$3,$4,$5,$6)",
        [(service, r.topic, r.key, r.value, [k for k, _ in r.headers], [v for _, v in r.headers]) for r in records],
    )


class InMemoryTransactions(Generic[R]):
    """Fake: one shared repository, a processed set and a list standing in for the outbox.

    Rolls back emitted events on error; repository fakes are expected to make changes only after
    their checks pass, so a failed handler leaves them unchanged.
    """

    def __init__(self, repo: R, consumer: str = "test") -> None:
        self.repo, self.consumer = repo, consumer
        self.processed: set[tuple[str, UUID]] = set()
        self.published: list[Record] = []
        self._claimed: dict[int, list[tuple[str, UUID]]] = {}

    @contextlib.asynccontextmanager
    async def begin(self, traceparent: str | None = None) -> AsyncIterator[Transaction[R]]:
        tx: Transaction[R] = Transaction(self.repo, self.consumer, traceparent)
        self._claimed[id(tx)] = claimed = []

        async def claim(consumer: str, event_ids: list[UUID]) -> set[UUID]:
            fresh = set()
            for event_id in event_ids:
                key = (consumer, event_id)
                if key not in self.processed and key not in claimed:
                    claimed.append(key)
                    fresh.add(event_id)
            return fresh

        tx._claim = claim
        try:
            yield tx
            await tx.run_pre_commit()
            self.processed.update(claimed)
            self.published.extend(tx.outgoing)
        finally:
            del self._claimed[id(tx)]
        _run_callbacks(tx)

    @contextlib.asynccontextmanager
    async def savepoint(self, tx: Transaction[R]) -> AsyncIterator[None]:
        mark, claimed_before = _mark(tx), len(self._claimed[id(tx)])
        try:
            yield
        except BaseException:
            _rewind(tx, mark)
            del self._claimed[id(tx)][claimed_before:]
            raise


def _mark(tx: Transaction[object]) -> tuple[int, int, int]:
    return len(tx.outgoing), len(tx.events), len(tx.committed_callbacks)


def _rewind(tx: Transaction[object], mark: tuple[int, int, int]) -> None:
    """Forget what a rolled-back savepoint emitted or scheduled."""
    outgoing, events, callbacks = mark
    del tx.outgoing[outgoing:], tx.events[events:], tx.committed_callbacks[callbacks:]


def _run_callbacks(tx: Transaction[object]) -> None:
    for callback in tx.committed_callbacks:
        callback()


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:1000]
