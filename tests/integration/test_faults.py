"""Kill the aggregation service (SIGKILL) mid-round: the round still completes with every accepted
update counted exactly once."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import numpy as np
import pytest

from fedstream.storage import tensors
from fedstream.storage.blobs import open_blob_store
from schemas import events as ev
from schemas.topics import PRIVACY_LEDGER
from tests.integration.harness import Submitter, wait_caught_up
from tests.integration.test_bad_input import small_spec, start

pytestmark = pytest.mark.integration


async def test_aggregator_killed_mid_round_resumes_and_counts_each_update_once(stack):
    spec = small_spec(f"fault-{uuid4().hex[:8]}", quorum=3, round_deadline_s=120)
    log, initial = await start(stack, spec)
    try:
        async with Submitter(stack.endpoints, spec.federation_id) as sub:
            first = await sub.submit("a", 1, {k: v + 1.0 for k, v in initial.items()}, num_examples=10)
            await log.wait_event(ev.PrivacyCharged, lambda e: e.update_id == first.update_id)
            await wait_caught_up(stack.endpoints, "fedstream-aggregation", (PRIVACY_LEDGER,))
            restarts = stack.services.children["aggregation"].restarts
            stack.services.kill("aggregation")  # SIGKILL: no draining, no goodbye
            others = [
                await sub.submit("b", 1, {k: v + 2.0 for k, v in initial.items()}, num_examples=20),
                await sub.submit("c", 1, {k: v + 4.0 for k, v in initial.items()}, num_examples=70),
            ]
            aggregated = await log.wait_event(ev.RoundAggregated, timeout=90)
        assert stack.services.children["aggregation"].restarts > restarts
        assert sorted(c.participant_id for c in aggregated.contributions) == ["a", "b", "c"]
        assert len({e.event_id for e in log.events(ev.RoundAggregated)}) == 1
        model = tensors.from_bytes(await open_blob_store(stack.endpoints.blob_store_url).get(aggregated.aggregate))
        for name, value in model.items():
            np.testing.assert_allclose(value, initial[name] + (1.0 * 10 + 2.0 * 20 + 4.0 * 70) / 100, rtol=1e-6)
        conn = await asyncpg.connect(stack.endpoints.database_url)
        try:
            rows = await conn.fetch("SELECT update_id FROM aggregation_contributions WHERE federation_id = $1", spec.federation_id)
        finally:
            await conn.close()
        assert sorted(r["update_id"] for r in rows) == sorted([first.update_id, *(o.update_id for o in others)])
    finally:
        await log.__aexit__(None, None, None)


async def test_losing_redis_loses_nothing_the_round_cache_is_rebuilt(stack):
    import redis.asyncio as aioredis

    spec = small_spec(f"redis-{uuid4().hex[:8]}", quorum=1, round_deadline_s=120)
    log, initial = await start(stack, spec)
    try:
        client = aioredis.from_url(stack.endpoints.redis_url)
        await client.flushall()  # coordination state gone: live participants, round cache
        await client.aclose()
        async with Submitter(stack.endpoints, spec.federation_id) as sub:
            update = await sub.submit("a", 1, {k: v + 1.0 for k, v in initial.items()})
            accepted = await log.wait_event(ev.UpdateAccepted, lambda e: e.update_id == update.update_id)
        assert accepted.round == 1
    finally:
        await log.__aexit__(None, None, None)
