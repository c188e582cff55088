"""The unit-of-work contract: claims dedupe, emissions happen only on commit, savepoints undo one message."""

from __future__ import annotations

from uuid import uuid4

import pytest

from fedstream.messaging.transaction import InMemoryTransactions, PostgresTransactions
from schemas import events as ev


def event():
    return ev.UpdateRejected(source="test", federation_id="contract", update_id=uuid4(), participant_id="p", round=1,
                             reason=ev.RejectionReason.DUPLICATE, detail="contract")


@pytest.fixture(params=["fake", "postgres"])
async def transactions(request, pg_pool):
    if request.param == "fake":
        fake = InMemoryTransactions(repo=None, consumer=f"contract-{uuid4().hex[:6]}")
        yield fake, lambda: _fake_outbox(fake)
        return
    pool = pg_pool
    service = f"contract-{uuid4().hex[:6]}"
    real = PostgresTransactions(pool, service, repo_factory=lambda conn: None)

    async def outbox():
        rows = await pool.fetch("SELECT value FROM outbox WHERE service = $1 ORDER BY id", service)
        return [bytes(r["value"]) for r in rows]

    yield real, outbox
    await pool.execute("DELETE FROM outbox WHERE service = $1", service)


async def _fake_outbox(fake):
    return [r.value for r in fake.published]


async def test_a_claimed_event_is_not_claimed_again(transactions):
    txs, _ = transactions
    event_id = uuid4()
    async with txs.begin() as tx:
        assert await tx.first_delivery(event_id)
        assert not await tx.first_delivery(event_id)
    async with txs.begin() as tx:
        assert not await tx.first_delivery(event_id)


async def test_emitted_events_reach_the_outbox_only_if_the_transaction_commits(transactions):
    txs, outbox = transactions
    kept, lost = event(), event()
    async with txs.begin() as tx:
        tx.emit(kept)
    with pytest.raises(RuntimeError):
        async with txs.begin() as tx:
            tx.emit(lost)
            raise RuntimeError("handler crashed")
    assert await outbox() == [kept.model_dump_json().encode()]


async def test_a_savepoint_undoes_one_message_and_keeps_the_rest(transactions):
    txs, outbox = transactions
    kept, undone = event(), event()
    undone_id = uuid4()
    async with txs.begin() as tx:
        tx.emit(kept)
        with pytest.raises(ValueError):
            async with txs.savepoint(tx):
                assert await tx.first_delivery(undone_id)
                tx.emit(undone)
                raise ValueError("poison")
        assert await tx.first_delivery(undone_id)  # the claim was rolled back with the savepoint
    assert await outbox() == [kept.model_dump_json().encode()]
