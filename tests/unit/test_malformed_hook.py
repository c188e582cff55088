"""A service may answer a record that does not decode (ingestion: extra fields → a rejection with its
reason); whatever it does not answer is dead-lettered as before."""

from uuid import uuid4

from fedstream.messaging.codec import Record, encode
from fedstream.messaging.consumer import BatchProcessor, Dispatcher
from fedstream.messaging.transaction import InMemoryTransactions
from schemas import events as ev
from schemas.topics import ADMISSIONS


def rejected():
    return ev.UpdateRejected(source="ingestion", federation_id="f", update_id=uuid4(), participant_id="p",
                             round=1, reason=ev.RejectionReason.DUPLICATE, detail="x")


async def test_a_malformed_record_the_service_answers_is_not_dead_lettered():
    answered = []

    async def hook(record, error, tx):
        if b"answer me" not in record.value:
            return False
        answered.append(str(error))
        tx.emit(rejected())
        return True

    txs = InMemoryTransactions(repo=None, consumer="test")
    proc = BatchProcessor(txs, Dispatcher({}), on_malformed=hook)
    headers = encode(rejected(), ADMISSIONS.name).headers
    await proc.process([Record(ADMISSIONS.name, b"f", b"answer me", headers), Record(ADMISSIONS.name, b"f", b"junk", headers)])
    assert len(answered) == 1 and "does not match its schema" in answered[0]
    topics = sorted(r.topic for r in txs.published)
    assert topics == ["fedstream.admissions", "fedstream.deadletter"]
    [dead] = [r for r in txs.published if r.topic == "fedstream.deadletter"]
    assert dead.value == b"junk"
