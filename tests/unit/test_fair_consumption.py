"""Fair consumption: lanes served round robin, each lane in order, offsets committed only past decided records."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from uuid import uuid4

from aiokafka import TopicPartition

from fedstream.messaging.codec import Record, encode
from fedstream.messaging.consumer import BatchProcessor, Dispatcher, RetryPolicy
from fedstream.messaging.fair import FairEventConsumer, Lanes, Pending
from fedstream.messaging.transaction import InMemoryTransactions
from schemas import events as ev
from schemas.base import BlobRef
from schemas.topics import ROUNDS, SUBMISSIONS
from services.ingestion.lanes import UNKNOWN_FEDERATIONS, lane_of

TP0, TP1 = TopicPartition(SUBMISSIONS.name, 0), TopicPartition(SUBMISSIONS.name, 1)


def pending(tp: TopicPartition, offset: int) -> Pending:
    return Pending(tp, offset, Record(tp.topic, b"f", str(offset).encode(), []))


def test_each_waiting_lane_gets_a_turn_before_a_lane_gets_its_second():
    lanes = Lanes()
    for offset in range(100):  # a flood, first in the partition
        lanes.add("flooder", pending(TP0, offset))
    lanes.add("alice", pending(TP0, 100))
    lanes.add("bob", pending(TP0, 101))
    first = lanes.next_step(size=4)
    assert [p.offset for p in first] == [0, 100, 101, 1]
    assert lanes.queued == 98


def test_a_step_serves_every_waiting_lane_even_past_its_size():
    lanes = Lanes()
    for i, lane in enumerate("abcdef"):
        lanes.add(lane, pending(TP0, i))
    assert len(lanes.next_step(size=2)) == 6


def test_a_lane_keeps_its_own_order():
    lanes = Lanes()
    for offset in range(10):
        lanes.add("a" if offset % 2 else "b", pending(TP0, offset))
    served = []
    while lanes.queued:
        served += lanes.next_step(size=3)
    assert [p.offset for p in served if p.offset % 2] == [1, 3, 5, 7, 9]
    assert [p.offset for p in served if not p.offset % 2] == [0, 2, 4, 6, 8]


def test_the_commit_point_is_the_first_undecided_offset():
    lanes = Lanes()
    for offset in range(5):
        lanes.add("flooder", pending(TP0, offset))
    lanes.add("alice", pending(TP0, 5))
    step = lanes.next_step(size=2)  # flooder 0, alice 5
    assert lanes.decided(step) == {TP0: 1}  # 1..4 are undecided: the partition may only move past 0
    rest = lanes.next_step(size=10)
    assert lanes.decided(rest) == {TP0: 6}


def test_partitions_commit_independently():
    lanes = Lanes()
    lanes.add("a", pending(TP0, 7))
    lanes.add("b", pending(TP1, 3))
    lanes.add("a", pending(TP0, 8))
    assert lanes.decided(lanes.next_step(size=2)) == {TP0: 8, TP1: 4}


def test_a_lost_partition_is_dropped_and_a_refetch_replaces_what_was_held():
    lanes = Lanes()
    for offset in range(3):
        lanes.add("a", pending(TP0, offset))
    lanes.add("b", pending(TP1, 0))
    lanes.drop_partitions([TP1])
    assert lanes.queued == 3 and lanes.partitions() == {TP0}
    lanes.add("a", pending(TP0, 1))  # fetched again from offset 1 (a seek after a rebalance)
    assert lanes.queued == 1
    assert lanes.decided(lanes.next_step(size=5)) == {TP0: 2}


# --- the loop, with a stand-in for the Kafka consumer -------------------------------------------


class FakeKafka:
    """Serves the given records once, then nothing; records commits."""

    def __init__(self, batches: dict[TopicPartition, list[Record]]) -> None:
        self.batches, self.commits, self.owned = batches, [], set(batches)

    async def getmany(self, timeout_ms: int, max_records: int):
        served, self.batches = self.batches, {}
        if not served:
            await asyncio.sleep(0)  # nothing more will come: let the test's stop condition run
        return {tp: [SimpleNamespace(offset=i, topic=tp.topic, key=r.key, value=r.value, headers=r.headers)
                     for i, r in enumerate(records)] for tp, records in served.items()}

    def assignment(self):
        return self.owned

    async def commit(self, offsets):
        self.commits.append(dict(offsets))


def submission(participant: str) -> Record:
    ref = BlobRef(uri="file:///x", sha256="a" * 64, size=1)
    event = ev.UpdateSubmitted(source=f"participant/{participant}", federation_id="f", update_id=uuid4(),
                               participant_id=participant, round=1, base_model_version=0, update=ref, num_examples=1,
                               train_loss=0.1)
    return encode(event, SUBMISSIONS.name)


async def test_the_others_are_handled_in_the_first_step_despite_a_flood_ahead_of_them():
    flood = [submission("flooder") for _ in range(200)]
    honest = [submission(p) for p in ("alice", "bob")]
    order: list[str] = []

    async def handle(event, tx):
        order.append(event.participant_id)

    txs = InMemoryTransactions(repo=None, consumer="test")
    processor = BatchProcessor(txs, Dispatcher({ev.UpdateSubmitted: handle}), RetryPolicy())
    kafka = FakeKafka({TP0: flood + honest})
    members = frozenset({"flooder", "alice", "bob"})
    loop = FairEventConsumer(kafka, processor, lambda r: lane_of(r, lambda f: members), step_size=8)
    task = asyncio.create_task(loop.run())
    while len(order) < 202:
        await asyncio.sleep(0)
    loop.stop()
    await task
    assert set(order[:3]) == {"flooder", "alice", "bob"}  # the first step already has both of the others
    # commits go out in the background, coalesced; they only move forward, and end past everything
    offsets = [c[TP0] for c in kafka.commits]
    assert offsets == sorted(offsets) and offsets[-1] == 202


def test_lanes_of_ingestion_records():
    members = frozenset({"alice"})
    known = lambda federation: members if federation == "f" else None  # noqa: E731
    assert lane_of(submission("alice"), known) == "sender:f/alice"
    assert lane_of(submission("mallory"), known) == "senders:f/outsiders"
    other = submission("alice")
    assert lane_of(Record(other.topic, b"g", other.value, other.headers), known) == UNKNOWN_FEDERATIONS
    # ordered topics (rounds, identity facts, aggregates) keep their partition's order
    assert lane_of(Record(ROUNDS.name, b"f", other.value, other.headers), known) is None


class TricklingKafka(FakeKafka):
    """Serves one batch per poll, in order: a flood first, then what came after it."""

    def __init__(self, tp: TopicPartition, batches: list[list[Record]]) -> None:
        super().__init__({})
        self.tp, self.pending, self.offset, self.owned = tp, list(batches), 0, {tp}

    async def getmany(self, timeout_ms: int, max_records: int):
        await asyncio.sleep(0)  # a poll yields to the loop, as the real client's does
        if not self.pending:
            return {}
        batch = self.pending.pop(0)
        messages = [SimpleNamespace(offset=self.offset + i, topic=self.tp.topic, key=r.key, value=r.value, headers=r.headers)
                    for i, r in enumerate(batch)]
        self.offset += len(batch)
        return {self.tp: messages}


async def test_what_arrives_while_a_flood_is_handled_is_served_in_the_next_step():
    order: list[str] = []

    async def handle(event, tx):
        await asyncio.sleep(0)  # handling waits on I/O: fetching goes on meanwhile
        order.append(event.participant_id)

    txs = InMemoryTransactions(repo=None, consumer="test")
    processor = BatchProcessor(txs, Dispatcher({ev.UpdateSubmitted: handle}), RetryPolicy())
    kafka = TricklingKafka(TP0, [[submission("flooder") for _ in range(200)], [submission("alice")]])
    members = frozenset({"flooder", "alice"})
    loop = FairEventConsumer(kafka, processor, lambda r: lane_of(r, lambda f: members), step_size=8)
    task = asyncio.create_task(loop.run())
    while len(order) < 201:
        await asyncio.sleep(0)
    loop.stop()
    await task
    assert order.index("alice") < 2 * 8  # not after the 200 ahead of it in the partition
