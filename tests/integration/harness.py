"""Helpers for integration tests on the real stack: watch topics, wait on consumer groups, submit updates.

Waiting is always on a condition observed in Kafka or PostgreSQL, with a deadline — never a bare sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, TopicPartition

from fedstream.messaging.codec import MalformedMessage, Record, decode, encode
from fedstream.messaging.consumer import to_record
from fedstream.messaging.kafka import make_producer, send_records, wait_caught_up  # noqa: F401 - re-exported for tests
from fedstream.participant.identity import ParticipantKeys, enrol
from fedstream.settings import Endpoints
from fedstream.storage import tensors
from fedstream.storage.blobs import open_blob_store
from schemas import events as ev
from schemas.topics import ALL_TOPICS, DEAD_LETTER, SUBMISSIONS, Topic, topic_for


class TopicLog:
    """Reads topics from the beginning (no consumer group) and keeps every record of one federation."""

    def __init__(self, endpoints: Endpoints, federation_id: str, topics: tuple[Topic, ...] = ALL_TOPICS) -> None:
        self.endpoints, self.federation_id, self.topics = endpoints, federation_id, topics
        self.records: list[Record] = []
        self.consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> "TopicLog":
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.endpoints.kafka_bootstrap_servers, enable_auto_commit=False)
        await self.consumer.start()
        partitions = [TopicPartition(t.name, p) for t in self.topics for p in range(t.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    def events(self, kind: type | None = None) -> list[ev.Event]:
        out = []
        for r in self.records:
            if r.topic == DEAD_LETTER.name:
                continue
            try:
                e = decode(r)
            except MalformedMessage:
                continue
            if kind is None or isinstance(e, kind):
                out.append(e)
        return out

    async def wait_for(self, predicate: Callable[["TopicLog"], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                kinds = sorted({type(e).__name__ for e in self.events()})
                raise TimeoutError(f"condition not met within {timeout}s; events seen: {kinds}")
            batches = await self.consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                self.records += [to_record(m) for m in messages if m.key == self.federation_id.encode()]

    async def read_to_end(self, timeout: float = 60) -> None:
        """Consume every partition up to its end offset as of now (a condition on Kafka, not a sleep)."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)

        async def behind() -> bool:
            return any([await self.consumer.position(tp) < end for tp, end in ends.items()])

        deadline = time.monotonic() + timeout
        while await behind():
            if time.monotonic() > deadline:
                raise TimeoutError("could not read the topics to their end")
            batches = await self.consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                self.records += [to_record(m) for m in messages if m.key == self.federation_id.encode()]

    async def wait_event(self, kind: type, predicate: Callable[[ev.Event], bool] = lambda e: True, timeout: float = 60) -> ev.Event:
        await self.wait_for(lambda log: any(predicate(e) for e in log.events(kind)), timeout)
        return next(e for e in self.events(kind) if predicate(e))


class Submitter:
    """Acts as participants: puts tensors in the blob store and publishes submissions (or raw bytes)."""

    def __init__(self, endpoints: Endpoints, federation_id: str) -> None:
        self.endpoints, self.federation_id = endpoints, federation_id
        self.blobs = open_blob_store(endpoints.blob_store_url)
        self.producer = make_producer(endpoints, "test-submitter")
        # zero trust: each participant this submitter acts as is enrolled (organisation org-<id>) on first use
        self.keys, self.enrolled = ParticipantKeys(), set()

    async def __aenter__(self) -> "Submitter":
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def submit(self, participant: str, round_number: int, weights=None, payload: bytes | None = None,
                     ref: ev.BlobRef | None = None, num_examples: int = 10) -> ev.UpdateSubmitted:
        if ref is None:
            ref = await self.blobs.put(payload if payload is not None else tensors.to_bytes(weights))
        await self.enrol(participant)
        event = self.keys.sign(ev.UpdateSubmitted(
            source=f"participant/{participant}", federation_id=self.federation_id, update_id=uuid4(),
            participant_id=participant, round=round_number, base_model_version=0, update=ref,
            num_examples=num_examples, train_loss=0.5,
        ))
        await self.publish(event)
        return event

    async def enrol(self, *participants: str) -> None:
        new = [p for p in participants if p not in self.enrolled]
        if new:
            await enrol(self.endpoints, [(p, f"org-{p}") for p in new], self.keys)
            self.enrolled.update(new)

    async def publish(self, event: ev.Event) -> None:
        await send_records(self.producer, [encode(event, topic_for(type(event)).name)])

    async def publish_raw(self, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await send_records(self.producer, [Record(SUBMISSIONS.name, self.federation_id.encode(), value, headers)])
