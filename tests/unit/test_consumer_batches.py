"""The shared consume step: dedupe by event id, dead-letter poison, retry bugs, dispatch by type."""

from uuid import uuid4

import pytest

from fedstream.messaging.codec import Record, decode, encode
from fedstream.messaging.consumer import BatchProcessor, Dispatcher, RetryPolicy
from fedstream.messaging.transaction import InMemoryTransactions
from schemas import events as ev
from schemas.topics import ADMISSIONS


def rejected(n=0):
    return ev.UpdateRejected(source="ingestion", federation_id="f", update_id=uuid4(), participant_id=f"p{n}",
                             round=1, reason=ev.RejectionReason.DUPLICATE, detail="x")


class Recorder:
    def __init__(self, fail_times=0):
        self.seen, self.fail_times = [], fail_times

    async def __call__(self, event, tx):
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("boom")
        self.seen.append(event.event_id)
        tx.emit(ev.UpdateRejected(source="test", federation_id="f", update_id=event.update_id,
                                  participant_id="echo", round=1, reason=ev.RejectionReason.DUPLICATE, detail="echo"))


def processor(handler, attempts=3):
    txs = InMemoryTransactions(repo=None, consumer="test")
    return BatchProcessor(txs, Dispatcher({ev.UpdateRejected: handler}), RetryPolicy(attempts_per_message=attempts)), txs


async def test_redelivery_is_a_no_op():
    handler = Recorder()
    proc, txs = processor(handler)
    record = encode(rejected(), ADMISSIONS.name)
    assert await proc.process([record, record]) == 1
    assert await proc.process([record]) == 0
    assert len(handler.seen) == 1 and len(txs.published) == 1


async def test_malformed_records_are_dead_lettered_with_the_reason_and_the_batch_goes_on():
    handler = Recorder()
    proc, txs = processor(handler)
    good = encode(rejected(), ADMISSIONS.name)
    garbage = Record(ADMISSIONS.name, b"f", b"\x00not json", good.headers)
    assert await proc.process([garbage, good]) == 1
    [dead] = [r for r in txs.published if r.topic == "fedstream.deadletter"]
    assert dead.value == garbage.value
    assert "does not match its schema" in dead.header("x-fedstream-error")
    assert dead.header("x-fedstream-original-topic") == ADMISSIONS.name


async def test_a_handler_that_fails_transiently_is_retried_and_succeeds():
    handler = Recorder(fail_times=2)
    proc, txs = processor(handler, attempts=3)
    assert await proc.process([encode(rejected(), ADMISSIONS.name)]) == 1
    assert len(handler.seen) == 1 and all(r.topic != "fedstream.deadletter" for r in txs.published)


async def test_a_handler_that_keeps_failing_is_dead_lettered_without_its_emissions():
    handler = Recorder(fail_times=99)
    proc, txs = processor(handler, attempts=3)
    assert await proc.process([encode(rejected(), ADMISSIONS.name)]) == 0
    [dead] = txs.published
    assert dead.topic == "fedstream.deadletter" and dead.header("x-fedstream-attempts") == "3"
    assert "RuntimeError: boom" in dead.header("x-fedstream-error")


async def test_events_without_a_handler_are_skipped():
    proc, txs = processor(Recorder())
    accepted = ev.UpdateAccepted(source="ingestion", federation_id="f", update_id=uuid4(), participant_id="p", round=1,
                                 update=ev.BlobRef(uri="memory://x", sha256="0" * 64, size=1), num_examples=1, train_loss=0.1)
    assert await proc.process([encode(accepted, ADMISSIONS.name)]) == 0
    assert txs.published == []


async def test_a_poison_message_mid_batch_is_isolated_and_the_others_are_handled_once():
    poison = rejected(99)

    class FailsOn(Recorder):
        async def __call__(self, event, tx):
            if event.event_id == poison.event_id:
                raise RuntimeError("poison")
            await super().__call__(event, tx)

    handler = FailsOn()
    proc, txs = processor(handler, attempts=2)
    good = [rejected(i) for i in range(3)]
    records = [encode(e, ADMISSIONS.name) for e in (good[0], poison, good[1], good[0], good[2])]
    assert await proc.process(records) == 3
    dead = [r for r in txs.published if r.topic == "fedstream.deadletter"]
    assert len(dead) == 1 and dead[0].header("ce_id") == str(poison.event_id)
    # what committed: exactly one echo per good event (the rolled-back fast path left nothing behind)
    echoes = [decode(r) for r in txs.published if r.topic != "fedstream.deadletter"]
    assert sorted(str(e.update_id) for e in echoes) == sorted(str(e.update_id) for e in good)


async def test_writes_kept_back_by_a_repository_are_flushed_once_just_before_commit():
    flushed = []

    class Batching:
        def __init__(self):
            self.kept = []

        async def flush(self):
            flushed.append(list(self.kept))
            self.kept.clear()

    repo = Batching()
    txs = InMemoryTransactions(repo=repo, consumer="test")
    async with txs.begin() as tx:
        for n in range(3):
            repo.kept.append(n)
            tx.before_commit(repo.flush)  # once per append, run once
    assert flushed == [[0, 1, 2]]
    with pytest.raises(RuntimeError):
        async with txs.begin() as tx:
            repo.kept.append(3)
            tx.before_commit(repo.flush)
            raise RuntimeError("rolled back")
    assert flushed == [[0, 1, 2]]  # a failed transaction writes nothing
