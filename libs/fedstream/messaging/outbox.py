"""Publishes what handlers wrote to the outbox, in order, and deletes it once Kafka acknowledged it.

Woken right after each commit for low latency, and on a timer to pick up rows left by a crash.
Several instances of a service share the table safely: rows are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiokafka import AIOKafkaProducer

from fedstream.messaging.codec import Record
from fedstream.messaging.kafka import send_records

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, service: str, batch: int = 500) -> None:
        self.pool, self.producer, self.service, self.batch = pool, producer, service, batch
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    async def run(self, poll_interval: float = 0.5) -> None:
        backoff = 0.1
        while True:
            self._wake.clear()
            try:
                while await self.publish_pending():
                    pass
                backoff = 0.1
            except Exception as exc:  # the rows stay in the outbox: nothing is lost, only delayed
                if self._stopping:
                    log.warning("outbox relay stopping with events unpublished (%s); they go out at next start", exc)
                    return
                log.warning("outbox relay could not publish (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), poll_interval)
            except TimeoutError:
                pass

    async def drain_and_stop(self) -> None:
        """Publish what is left, then let ``run`` return."""
        self._stopping = True
        self._wake.set()

    async def publish_pending(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, value, header_keys, header_values FROM outbox "
                "WHERE service = $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
                self.service,
                self.batch,
            )
            if not rows:
                return 0
            records = [
                Record(r["topic"], bytes(r["key"]), bytes(r["value"]), list(zip(r["header_keys"], map(bytes, r["header_values"]))))
                for r in rows
            ]
            await send_records(self.producer, records)
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
            return len(rows)
