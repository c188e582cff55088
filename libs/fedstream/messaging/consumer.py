"""The consume loop every service shares: decode, dispatch by type, commit, then acknowledge.

For each batch from Kafka, one PostgreSQL transaction: each message runs in a savepoint, claims its
event id in the inbox (redelivery → no-op), calls the handler registered for its class, and the
events it emits land in the outbox. Only after that transaction commits are the offsets committed.

Failures:
- a record that does not decode, or a handler that keeps failing on one message, is dead-lettered
  with the error in headers (through the outbox, in the same transaction) and the batch goes on;
- a transient error (database or network) rolls the batch back and retries it with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from fedstream.messaging.codec import MalformedMessage, Record, decode
from fedstream.messaging.transaction import Transaction, Transactions
from fedstream.observability import metrics, tracing
from schemas.base import Event

log = logging.getLogger(__name__)

Handler = Callable[[Any, Transaction[Any]], Awaitable[None]]
# Optional per-service hook: start I/O for a whole batch before its transaction (e.g. reading blobs).
Prefetch = Callable[[list[Event]], Awaitable[None]]
# Optional per-service hook for a record that does not decode: True if the service answered it (e.g.
# ingestion rejects a submission carrying extra fields with a reason), else it is dead-lettered.
MalformedHook = Callable[[Record, MalformedMessage, Transaction[Any]], Awaitable[bool]]
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_message: int = 3
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0


class Dispatcher:
    """Routes a decoded event to the handler registered for its class (types, not strings)."""

    def __init__(self, handlers: Mapping[type[Event], Handler]) -> None:
        self.handlers = dict(handlers)

    def handler_for(self, event: Event) -> Handler | None:
        return self.handlers.get(type(event))

    async def dispatch(self, event: Event, tx: Transaction[Any]) -> bool:
        handler = self.handler_for(event)
        if handler is None or not await tx.first_delivery(event.event_id):
            return False
        await handler(event, tx)
        return True


def to_record(message: ConsumerRecord) -> Record:
    return Record(message.topic, message.key or b"", message.value or b"", list(message.headers or ()))


class HandlerFailed(Exception):
    """A handler raised on the fast path; the batch is rolled back and retried message by message."""


class BatchProcessor:
    """Handles one batch in one transaction; independent of Kafka so it is unit-testable.

    Fast path: claim every event id of the batch in one statement, run the handlers, commit — no
    per-message savepoints. If any handler raises, the whole batch is rolled back and processed again
    message by message, each in a savepoint, so one poison message is retried and dead-lettered alone.
    """

    def __init__(
        self,
        transactions: Transactions[Any],
        dispatcher: Dispatcher,
        retry: RetryPolicy = RetryPolicy(),
        prefetch: Prefetch | None = None,
        on_malformed: MalformedHook | None = None,
    ) -> None:
        self.transactions, self.dispatcher, self.retry, self.prefetch = transactions, dispatcher, retry, prefetch
        self.on_malformed = on_malformed

    async def process(self, records: list[Record]) -> int:
        """Returns how many events were handled (not counting duplicates and dead letters)."""
        decoded = [(record, self._decode(record)) for record in records]
        if self.prefetch is not None:
            await self.prefetch([e for _, e in decoded if isinstance(e, Event)])
        try:
            return await self._fast(decoded)
        except HandlerFailed:
            return await self._isolating(decoded)

    @staticmethod
    def _decode(record: Record) -> Event | MalformedMessage:
        try:
            return decode(record)
        except MalformedMessage as exc:
            return exc

    async def _fast(self, decoded: list[tuple[Record, Event | MalformedMessage]]) -> int:
        handled = 0
        async with self.transactions.begin(decoded[0][0].header("traceparent") if decoded else None) as tx:
            wanted = [e.event_id for _, e in decoded if isinstance(e, Event) and self.dispatcher.handler_for(e)]
            fresh = await tx.first_deliveries(wanted) if wanted else set()
            for record, event in decoded:
                tx.traceparent, tx.record = record.header("traceparent"), record
                if isinstance(event, MalformedMessage):
                    await self._malformed(tx, record, event)
                elif event.event_id in fresh:
                    fresh.discard(event.event_id)  # a duplicate inside the same batch is a no-op too
                    try:
                        with tracing.consuming(event, record.topic, tx.traceparent):
                            await self.dispatcher.handler_for(event)(event, tx)
                    except TRANSIENT_ERRORS:
                        raise
                    except Exception as exc:
                        raise HandlerFailed(event.TYPE) from exc
                    handled += 1
                    metrics.events_consumed.add(1, {"service": tx.consumer, "topic": record.topic, "type": event.TYPE})
            tx.after_commit(lambda: metrics.observe_committed(tx.consumer, tx.events))
        return handled

    async def _isolating(self, decoded: list[tuple[Record, Event | MalformedMessage]]) -> int:
        handled = 0
        async with self.transactions.begin(decoded[0][0].header("traceparent") if decoded else None) as tx:
            for record, event in decoded:
                tx.traceparent, tx.record = record.header("traceparent"), record
                if isinstance(event, MalformedMessage):
                    await self._malformed(tx, record, event)
                elif self.dispatcher.handler_for(event) is not None:
                    with tracing.consuming(event, record.topic, tx.traceparent):
                        handled += await self._one(tx, record, event)
            tx.after_commit(lambda: metrics.observe_committed(tx.consumer, tx.events))
        return handled

    async def _malformed(self, tx: Transaction[Any], record: Record, error: MalformedMessage) -> None:
        if self.on_malformed is None or not await self.on_malformed(record, error, tx):
            self._dead_letter_malformed(tx, record, error)

    @staticmethod
    def _dead_letter_malformed(tx: Transaction[Any], record: Record, error: MalformedMessage) -> None:
        log.warning("dead-lettering a malformed record from %s: %s", record.topic, error)
        tx.dead_letter(record, error, attempts=1)
        metrics.events_failed.add(1, {"service": tx.consumer, "reason": "malformed"})

    async def _one(self, tx: Transaction[Any], record: Record, event: Event) -> int:
        for attempt in range(1, self.retry.attempts_per_message + 1):
            try:
                async with self.transactions.savepoint(tx):
                    return int(await self.dispatcher.dispatch(event, tx))
            except TRANSIENT_ERRORS:
                raise  # the whole batch is retried
            except Exception as exc:  # a bug or a poison message: retry, then dead-letter
                if attempt == self.retry.attempts_per_message:
                    log.exception("dead-lettering %s %s after %d attempts", event.TYPE, event.event_id, attempt)
                    tx.dead_letter(record, exc, attempts=attempt)
                    metrics.events_failed.add(1, {"service": tx.consumer, "reason": "handler_error"})
        return 0


class EventConsumer:
    """Kafka loop around a ``BatchProcessor``; ``stop()`` (SIGTERM) finishes the batch in flight."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        processor: BatchProcessor,
        on_commit: Callable[[], None] = lambda: None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.consumer, self.processor, self.on_commit, self.retry = consumer, processor, on_commit, retry
        self._stopping = asyncio.Event()
        self.handled = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            batches = await self.consumer.getmany(timeout_ms=200, max_records=500)
            for tp, messages in batches.items():
                await self._process_with_retry(tp, [to_record(m) for m in messages], messages[-1].offset)

    async def _process_with_retry(self, tp: TopicPartition, records: list[Record], last_offset: int) -> None:
        handled = await process_with_retry(self.processor, records, self.retry, self._stopping, tp.topic)
        if handled is None:
            return  # stopping: not committed, the batch is redelivered after restart and deduplicated
        self.handled += handled
        self.on_commit()
        try:
            await self.consumer.commit({tp: last_offset + 1})
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partition: the new owner redelivers, and the inbox makes that a no-op.
            log.warning("offset commit for %s failed (%s); redelivery will be deduplicated", tp, exc)


async def process_with_retry(
    processor: BatchProcessor, records: list[Record], retry: RetryPolicy, stopping: asyncio.Event, label: str = "batch"
) -> int | None:
    """Handle ``records`` in one transaction, retrying transient errors with backoff; how many events were
    handled, or None if told to stop while retrying (nothing committed)."""
    backoff = retry.initial_backoff_s
    while True:
        try:
            started = time.perf_counter()
            handled = await processor.process(records)
            elapsed = time.perf_counter() - started
            metrics.batch_duration.record(elapsed, {"topic": label})
            log.debug("batch of %d (%s) in %.1f ms", len(records), label, elapsed * 1000)
            return handled
        except TRANSIENT_ERRORS as exc:
            if stopping.is_set():
                return None
            log.warning("transient error on %s: %s; retrying the batch in %.1fs", label, exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, retry.max_backoff_s)
