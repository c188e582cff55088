"""Fair consumption: one sender's flood cannot hold up everyone else's messages.

Kafka orders a partition strictly, so a consumer that handles each fetched batch front to back makes
every message wait for all the ones ahead of it — including a flood of thousands from one participant.
Here fetched records are queued in *lanes* (a service says which lane a record belongs to: its sender
for participants' messages, its partition for everything that must stay in order) and handled in
*steps* that take one record from each waiting lane in turn (deficit round robin with a quantum of one)
until the step is full. A lane never reorders its own records, so each sender's messages (and each
ordered partition) keep their order; only different lanes overtake each other.

Delivery semantics are unchanged: each step commits in one transaction (inbox + outbox) before any of
its offsets, and a partition's committed offset only moves past records that are decided — it is the
lowest undecided offset of that partition. A crash redelivers what was not committed, and the inbox
makes records decided before the crash no-ops. Records of a partition this consumer lost (rebalance)
are dropped from the lanes: its new owner handles them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from fedstream.messaging.codec import Record
from fedstream.messaging.consumer import BatchProcessor, RetryPolicy, process_with_retry, to_record

log = logging.getLogger(__name__)

# A record's lane; None keeps it in its partition's order (one lane per partition).
LaneOf = Callable[[Record], str | None]


@dataclass(frozen=True)
class Pending:
    tp: TopicPartition
    offset: int
    record: Record


@dataclass
class _PartitionProgress:
    """Offsets fetched and not yet committed, in fetch order; the commit point is the first undecided."""

    fetched: deque[int] = field(default_factory=deque)
    decided: set[int] = field(default_factory=set)
    next_offset: int | None = None  # one past the last offset fetched

    def holds(self, offset: int) -> bool:
        """Whether ``offset`` (one this partition's fetches returned) is still uncommitted: offsets are
        fetched in increasing order and leave from the front, so a range check suffices."""
        return bool(self.fetched) and self.fetched[0] <= offset <= self.fetched[-1]

    def commit_point(self) -> int | None:
        while self.fetched and self.fetched[0] in self.decided:
            self.decided.discard(self.fetched.popleft())
        if self.next_offset is None:
            return None
        return self.fetched[0] if self.fetched else self.next_offset


class Lanes:
    """Per-lane FIFO queues, served round robin; pure bookkeeping, no I/O (unit-tested alone)."""

    def __init__(self) -> None:
        self._lanes: dict[str, deque[Pending]] = {}
        self._turns: deque[str] = deque()  # waiting lanes, in the order they are served next
        self._progress: dict[TopicPartition, _PartitionProgress] = {}
        self.queued = 0

    def add(self, lane: str, pending: Pending) -> None:
        progress = self._progress.setdefault(pending.tp, _PartitionProgress())
        if progress.next_offset is not None and pending.offset < progress.next_offset:
            # fetched again (after a rebalance or a seek): what we held for it is stale
            self.drop_partitions([pending.tp])
            progress = self._progress.setdefault(pending.tp, _PartitionProgress())
        progress.fetched.append(pending.offset)
        progress.next_offset = pending.offset + 1
        queue = self._lanes.get(lane)
        if queue is None:
            queue = self._lanes[lane] = deque()
            self._turns.append(lane)
        queue.append(pending)
        self.queued += 1

    def next_step(self, size: int) -> list[Pending]:
        """Up to ``size`` records, one per lane per turn; every waiting lane gets at least one turn."""
        step: list[Pending] = []
        first_round = len(self._turns)
        while self._turns and (len(step) < size or first_round > 0):
            lane = self._turns.popleft()
            first_round -= 1
            queue = self._lanes[lane]
            step.append(queue.popleft())
            if queue:
                self._turns.append(lane)
            else:
                del self._lanes[lane]
        self.queued -= len(step)
        return step

    def decided(self, step: Iterable[Pending]) -> dict[TopicPartition, int]:
        """Mark a committed step's records decided; returns the offsets now safe to commit."""
        touched = set()
        for pending in step:
            progress = self._progress.get(pending.tp)
            if progress is not None and progress.holds(pending.offset):
                progress.decided.add(pending.offset)
                touched.add(pending.tp)
        points = {tp: self._progress[tp].commit_point() for tp in touched}
        return {tp: offset for tp, offset in points.items() if offset is not None}

    def drop_partitions(self, partitions: Iterable[TopicPartition]) -> None:
        gone = set(partitions)
        for tp in gone:
            self._progress.pop(tp, None)
        for lane in list(self._lanes):
            kept = deque(p for p in self._lanes[lane] if p.tp not in gone)
            self.queued -= len(self._lanes[lane]) - len(kept)
            if kept:
                self._lanes[lane] = kept
            else:
                del self._lanes[lane]
        self._turns = deque(lane for lane in self._turns if lane in self._lanes)

    def partitions(self) -> set[TopicPartition]:
        return set(self._progress)


class FairEventConsumer:
    """Kafka loop that serves lanes fairly; ``stop()`` (SIGTERM) finishes the step in flight."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        processor: BatchProcessor,
        lane_of: LaneOf,
        on_commit: Callable[[], None] = lambda: None,
        retry: RetryPolicy = RetryPolicy(),
        step_size: int = 8,
        max_queued: int = 20_000,
    ) -> None:
        self.consumer, self.processor, self.lane_of, self.on_commit, self.retry = consumer, processor, lane_of, on_commit, retry
        self.step_size, self.max_queued = step_size, max_queued
        self.lanes = Lanes()
        self.committer = OffsetCommitter(consumer)
        self._stopping = asyncio.Event()
        self._arrived, self._room = asyncio.Event(), asyncio.Event()  # records fetched; room in the lanes
        self.handled = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Steps while records wait; fetching runs beside it (``_fetch_forever``), so what arrives behind a
        flood is in its lane by the next step rather than after the steps ahead of it."""
        fetching = asyncio.create_task(self._fetch_forever(), name="fair-fetch")
        try:
            while not self._stopping.is_set():
                self._arrived.clear()
                if not self.lanes.queued:
                    await self._until_arrival(fetching)
                    continue
                self._forget_lost_partitions()
                step = self.lanes.next_step(self.step_size)
                self._room.set()
                if step and not await self._process(step):
                    return
        finally:
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetching
            await self.committer.flush()

    async def _until_arrival(self, fetching: asyncio.Task[None]) -> None:
        arrived = asyncio.create_task(self._arrived.wait())
        try:
            await asyncio.wait({arrived, fetching}, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
        finally:
            arrived.cancel()
        if fetching.done():
            fetching.result()  # the fetcher failed: so does this loop (the service restarts)

    async def _fetch_forever(self) -> None:
        while not self._stopping.is_set():
            if self.lanes.queued >= self.max_queued:  # back-pressure: wait until steps make room
                self._room.clear()
                await self._room.wait()
                continue
            if await self._fetch(timeout_ms=200):
                self._arrived.set()

    async def _fetch(self, timeout_ms: int) -> int:
        # Take everything fetched so far (not a few hundred): the fetcher asks the broker for more of a
        # partition only once what it holds of it is taken, and what waits behind a flood must be seen.
        batches = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_queued - self.lanes.queued)
        for tp, messages in batches.items():
            for message in messages:
                record = to_record(message)
                lane = self.lane_of(record) or f"partition:{tp.topic}:{tp.partition}"
                self.lanes.add(lane, Pending(tp, message.offset, record))
        return sum(map(len, batches.values()))

    def _forget_lost_partitions(self) -> None:
        lost = self.lanes.partitions() - set(self.consumer.assignment())
        if lost:
            log.info("partitions %s were reassigned: their queued records are left to the new owner", sorted(map(str, lost)))
            self.lanes.drop_partitions(lost)

    async def _process(self, step: list[Pending]) -> bool:
        topics = ",".join(sorted({p.tp.topic for p in step}))
        handled = await process_with_retry(self.processor, [p.record for p in step], self.retry, self._stopping, topics)
        if handled is None:
            return False  # stopping mid-retry: not committed, redelivered after restart
        self.handled += handled
        self.on_commit()
        self.committer.submit(self.lanes.decided(step))
        return True


class OffsetCommitter:
    """Commits offsets in the background, latest first: the next step need not wait for the broker's
    answer. Safe because offsets are only submitted once their step's transaction committed; a commit
    that is late or lost only means more redelivery, which the inbox makes a no-op."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self._pending: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None

    def submit(self, offsets: dict[TopicPartition, int]) -> None:
        self._pending.update(offsets)
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._commit_pending())

    async def flush(self) -> None:
        if self._task is not None:
            await self._task

    async def _commit_pending(self) -> None:
        while self._pending:
            owned = self.consumer.assignment()
            offsets = {tp: offset for tp, offset in self._pending.items() if tp in owned}
            self._pending = {}
            if not offsets:
                continue
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, KafkaError) as exc:
                # A rebalance took the partition: the new owner redelivers, and the inbox makes that a no-op.
                log.warning("offset commit failed (%s); redelivery will be deduplicated", exc)
