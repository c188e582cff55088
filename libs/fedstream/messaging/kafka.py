"""aiokafka adapters: producer and consumer factories and topic provisioning.

Producers are idempotent with ``acks=all`` where the broker supports it (Apache Kafka); on Tansu,
which has no idempotent producer, they fall back to plain ``acks=all`` — correctness never depended
on it, because every consumer deduplicates by event id.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from fedstream.messaging.codec import Record
from fedstream.settings import Endpoints
from schemas.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)


def make_producer(endpoints: Endpoints, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=endpoints.supports_idempotent_producer,
        linger_ms=2,
        request_timeout_ms=30_000,
    )


def make_consumer(endpoints: Endpoints, group_id: str, topics: tuple[Topic, ...], client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *(t.name for t in topics),
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,  # offsets are committed only after the handler's transaction
        auto_offset_reset="earliest",
        fetch_max_wait_ms=500,  # a long poll: the broker answers as soon as one record arrives
        max_poll_records=500,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


async def send_records(producer: AIOKafkaProducer, records: list[Record]) -> None:
    """Send in order and wait for every acknowledgement."""
    futures = [
        await producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records
    ]
    if futures:
        await asyncio.gather(*futures)


async def ensure_topics(bootstrap_servers: str, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[str]:
    """Create missing topics (idempotent). Returns the names created now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="fedstream-provisioner")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t.name, num_partitions=t.partitions, replication_factor=1) for t in missing]
                )
            except TopicAlreadyExistsError:  # another process won the race: fine
                pass
        return [t.name for t in missing]
    finally:
        await admin.close()


async def wait_caught_up(endpoints: Endpoints, group: str, topics: tuple[Topic, ...], timeout: float = 60) -> None:
    """Until the consumer group has committed offsets at the end of every partition of ``topics`` (tests and
    benchmarks wait on this condition instead of sleeping)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    probe = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers)
    await admin.start()
    await probe.start()
    try:
        partitions = [TopicPartition(t.name, p) for t in topics for p in range(t.partitions)]
        ends = await probe.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = {tp: end for tp, end in ends.items() if end > 0 and (committed.get(tp) is None or committed[tp].offset < end)}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} still behind on {sorted(map(str, behind))}")
            await asyncio.sleep(0.1)  # polling a condition in Kafka, bounded by the deadline
    finally:
        await probe.stop()
        await admin.close()
