from datetime import UTC, datetime, timedelta

import numpy as np

from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from services.aggregation.fakes import InMemoryAggregationRepository
from services.aggregation.handlers import AggregationHandlers
from schemas import events as ev
from tests.unit.helpers import charged, emitted, put_weights, weights

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def setup(participants=("a", "b", "c"), quorum=2):
    blobs, clock = InMemoryBlobStore(), Clock()
    handlers = AggregationHandlers(blobs, clock)
    txs = InMemoryTransactions(InMemoryAggregationRepository())
    opened = ev.RoundOpened(source="registry", federation_id="f", round=1, model_version=0,
                            global_model=await put_weights(blobs, weights()), participants=participants, quorum=quorum,
                            deadline=NOW + timedelta(seconds=30), local_epochs=1, learning_rate=0.1, batch_size=8)
    async with txs.begin() as tx:
        await handlers.on_round_opened(opened, tx)
    return blobs, clock, handlers, txs


async def deliver(handlers, txs, event):
    async with txs.begin() as tx:
        await handlers.on_charged(event, tx)


async def test_round_aggregates_once_everyone_submitted_with_example_weights():
    blobs, _, handlers, txs = await setup()
    for pid, value, n in (("a", 1.0, 10), ("b", 2.0, 30), ("c", 4.0, 60)):
        await deliver(handlers, txs, charged(pid, await put_weights(blobs, weights(value)), n))
    [aggregated] = emitted(txs.published)
    assert isinstance(aggregated, ev.RoundAggregated) and aggregated.closed_by == "all_submitted"
    result = tensors.from_bytes(await blobs.get(aggregated.aggregate))
    np.testing.assert_allclose(result["0.weight"], np.full((1, 3), 0.1 + 0.6 + 2.4), rtol=1e-6)
    assert sorted(c.participant_id for c in aggregated.contributions) == ["a", "b", "c"]


async def test_a_second_update_from_a_participant_is_not_counted():
    blobs, _, handlers, txs = await setup()
    ref = await put_weights(blobs, weights(1.0))
    await deliver(handlers, txs, charged("a", ref))
    await deliver(handlers, txs, charged("a", ref))
    [rejected] = emitted(txs.published)
    assert isinstance(rejected, ev.UpdateRejected) and rejected.reason is ev.RejectionReason.DUPLICATE
    assert (await txs.repo.lock_round("f", 1)).received == 1


async def test_deadline_closes_on_quorum_and_late_updates_are_refused():
    blobs, clock, handlers, txs = await setup()
    for pid in ("a", "b"):
        await deliver(handlers, txs, charged(pid, await put_weights(blobs, weights(1.0))))
    await handlers.close_due_rounds(txs)
    assert txs.published == []  # deadline not reached yet
    clock.now = NOW + timedelta(seconds=31)
    await handlers.close_due_rounds(txs)
    [aggregated] = emitted(txs.published)
    assert aggregated.closed_by == "deadline" and len(aggregated.contributions) == 2
    await deliver(handlers, txs, charged("c", await put_weights(blobs, weights(9.0))))
    late = emitted(txs.published)[-1]
    assert isinstance(late, ev.UpdateRejected) and late.reason is ev.RejectionReason.ROUND_CLOSED


async def test_deadline_below_quorum_fails_the_round():
    blobs, clock, handlers, txs = await setup(quorum=3)
    await deliver(handlers, txs, charged("a", await put_weights(blobs, weights(1.0))))
    clock.now = NOW + timedelta(minutes=5)
    await handlers.close_due_rounds(txs)
    [failed] = emitted(txs.published)
    assert isinstance(failed, ev.RoundFailed) and (failed.received, failed.quorum) == (1, 3)


async def test_folded_partial_sums_and_a_fresh_aggregator_give_the_same_aggregate():
    blobs, _, handlers, txs = await setup()
    updates = [("a", 1.0, 10), ("b", 2.0, 30), ("c", 4.0, 60)]
    refs = {pid: await put_weights(blobs, weights(v)) for pid, v, _ in updates}
    for pid, _, n in updates[:2]:
        await deliver(handlers, txs, charged(pid, refs[pid], n))
    assert len(handlers.partials._rounds[("f", 1)].pending) == 2  # folded after each commit
    restarted = AggregationHandlers(blobs, handlers.clock)  # knows nothing of the partial sums
    await deliver(restarted, txs, charged("c", refs["c"], 60))
    [aggregated] = emitted(txs.published)
    result = tensors.from_bytes(await blobs.get(aggregated.aggregate))
    np.testing.assert_allclose(result["0.weight"], np.full((1, 3), 0.1 + 0.6 + 2.4), rtol=1e-6)


async def test_an_update_charged_before_its_round_is_seen_open_is_counted_when_it_opens():
    blobs, clock = InMemoryBlobStore(), Clock()
    handlers = AggregationHandlers(blobs, clock)
    txs = InMemoryTransactions(InMemoryAggregationRepository())
    early = charged("a", await put_weights(blobs, weights(1.0)), 10)
    await deliver(handlers, txs, early)  # the RoundOpened is still on its way (another topic)
    assert emitted(txs.published) == []  # parked, not refused
    opened = ev.RoundOpened(source="registry", federation_id="f", round=1, model_version=0,
                            global_model=await put_weights(blobs, weights()), participants=("a",), quorum=1,
                            deadline=NOW + timedelta(seconds=30), local_epochs=1, learning_rate=0.1, batch_size=8)
    async with txs.begin() as tx:
        await handlers.on_round_opened(opened, tx)
    [aggregated] = emitted(txs.published)
    assert [c.update_id for c in aggregated.contributions] == [early.update_id]
