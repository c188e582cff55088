"""Rebuild the registry's read views from the event log alone (``fedstream views replay``).

Reads every topic the registry projects from, from the first offset up to the end offsets seen at
start, and applies the same projections the live service applies. Because projections are
idempotent, order-tolerant upserts keyed by event facts, the rebuilt tables equal the live ones.
"""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from fedstream.messaging.codec import MalformedMessage, decode
from fedstream.messaging.consumer import to_record
from fedstream.messaging.kafka import client_security
from fedstream.settings import Endpoints
from fedstream.storage.postgres import apply_migrations, create_pool
from services.registry import projections
from schemas.topics import REGISTRY, topics_consumed_by


async def replay_views(endpoints: Endpoints, database_url: str) -> int:
    """Returns the number of events projected."""
    await apply_migrations(database_url)
    pool = await create_pool(database_url)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers, enable_auto_commit=False, **client_security(endpoints)
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(t.name, p) for t in topics_consumed_by(REGISTRY) for p in range(t.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end > 0}
        projected = 0
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            async with pool.acquire() as conn, conn.transaction():
                for tp, messages in batches.items():
                    for message in messages:
                        if message.offset < remaining.get(tp, 0):
                            projected += await _project(conn, message)
                    if messages and messages[-1].offset + 1 >= remaining.get(tp, 0):
                        remaining.pop(tp, None)
        return projected
    finally:
        await consumer.stop()
        await pool.close()


async def _project(conn: asyncpg.Connection, message) -> int:  # noqa: ANN001
    try:
        event = decode(to_record(message))
    except MalformedMessage:
        return 0  # dead-lettered by the live consumer too
    await projections.project(conn, event)
    return int(type(event) in projections.PROJECTIONS)
