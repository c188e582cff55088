"""The checkpoints as published on ``fedstream.audit``: the copy of them outside the database.

An auditor (or `fedstream audit verify --published`) reads them from the topic, from the first offset
to the end offsets seen at start, and checks them on their own or against the database.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import TopicPartition

from fedstream.messaging.codec import MalformedMessage, decode
from fedstream.messaging.consumer import to_record
from fedstream.messaging.kafka import make_consumer
from fedstream.settings import Endpoints
from services.compliance.checkpoints import Checkpoint, from_event
from schemas.compliance import AuditCheckpointSigned
from schemas.topics import AUDIT


class PublishedReadTimeout(TimeoutError):
    """The topic could not be read to its end in time."""


async def read_published_checkpoints(endpoints: Endpoints, timeout_s: float = 60) -> list[Checkpoint]:
    # No consumer group: an auditor's read commits nothing and joins no one's partition assignment.
    consumer = make_consumer(endpoints, None, (AUDIT,), "fedstream-audit-reader")  # type: ignore[arg-type]
    await consumer.start()
    try:
        partitions = [TopicPartition(AUDIT.name, p) for p in range(AUDIT.partitions)]
        remaining = {tp: end for tp, end in (await consumer.end_offsets(partitions)).items() if end > 0}
        found: dict[int, Checkpoint] = {}
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise PublishedReadTimeout(f"{AUDIT.name} not read to its end within {timeout_s} s")
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                for message in messages:
                    _collect(found, message)
                if messages and messages[-1].offset + 1 >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
            await asyncio.sleep(0)
        return sorted(found.values(), key=lambda c: c.tree_size)
    finally:
        await consumer.stop()


def _collect(found: dict[int, Checkpoint], message) -> None:  # noqa: ANN001 - an aiokafka ConsumerRecord
    try:
        event = decode(to_record(message))
    except MalformedMessage:
        return  # not a checkpoint anyone could have signed
    if isinstance(event, AuditCheckpointSigned):
        found.setdefault(event.tree_size, from_event(event))  # a republished duplicate is the same checkpoint
