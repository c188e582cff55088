"""With tracing off (the default), consuming costs no span, and the trace still carries on."""

from __future__ import annotations

from uuid import uuid4

from fedstream.messaging.codec import encode
from fedstream.messaging.consumer import BatchProcessor, Dispatcher
from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.observability import tracing
from schemas import events as ev
from schemas.topics import ADMISSIONS


def rejected() -> ev.UpdateRejected:
    return ev.UpdateRejected(source="ingestion", federation_id="f", update_id=uuid4(), participant_id="p", round=1,
                             reason=ev.RejectionReason.DUPLICATE, detail="x")


async def test_an_event_emitted_while_handling_continues_the_consumed_trace_without_a_span(monkeypatch):
    monkeypatch.setattr(tracing, "_recording", False)  # as in a process that installed no tracer provider
    with tracing.consuming(rejected(), ADMISSIONS.name, None) as span:
        assert not span.is_recording()

    async def echo(event, tx):
        tx.emit(rejected())

    txs = InMemoryTransactions(repo=None, consumer="test")
    consumed = encode(rejected(), ADMISSIONS.name)
    await BatchProcessor(txs, Dispatcher({ev.UpdateRejected: echo})).process([consumed])
    [published] = txs.published
    parent, child = consumed.header("traceparent").split("-"), published.header("traceparent").split("-")
    assert child[1] == parent[1] and child[2] != parent[2]  # same trace, a span of its own
