"""One contract for the Redis coordination port: the fake and the real Redis behave alike."""

from __future__ import annotations

from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from fedstream.storage.coordination import InMemoryCoordination, RedisCoordination


class Clock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["fake", "redis"])
async def coordination(request, infra):
    clock = Clock()
    if request.param == "fake":
        yield InMemoryCoordination(clock), clock
        return
    client = aioredis.from_url(infra.endpoints.redis_url)
    yield RedisCoordination(client, clock), clock
    await client.aclose()


async def test_a_heartbeat_keeps_a_participant_live_until_its_ttl(coordination):
    c, clock = coordination
    f = f"contract-{uuid4().hex[:8]}"  # keys of its own: the suite shares one Redis with running services
    await c.record_heartbeat(f, "a", ttl_s=10)
    await c.record_heartbeat(f, "b", ttl_s=30)
    assert await c.live_participants(f) == {"a", "b"}
    clock.now += 15
    assert await c.live_participants(f) == {"b"}
    await c.record_heartbeat(f, "a", ttl_s=10)
    assert await c.live_participants(f) == {"a", "b"}
    assert await c.live_participants("other") == set()


async def test_round_cache_round_trips_and_misses_cleanly(coordination):
    c, _ = coordination
    f = f"contract-{uuid4().hex[:8]}"
    assert await c.cached_round(f) is None
    state = {"round": 3, "participants": ["a", "b"], "deadline": "2026-01-01T00:00:00+00:00", "open": True}
    await c.cache_round(f, state, ttl_s=60)
    assert await c.cached_round(f) == state


async def test_a_token_bucket_allows_its_burst_then_its_rate(coordination):
    from fedstream.security.rate_limit import BucketPolicy

    c, clock = coordination
    bucket, policy = f"contract-{uuid4().hex[:8]}", BucketPolicy(rate_per_s=2, burst=3)
    assert [await c.take_token(bucket, policy) for _ in range(4)] == [True, True, True, False]
    assert await c.take_token(f"{bucket}-other", policy)  # buckets are independent
    clock.now += 0.5  # refills one token
    assert [await c.take_token(bucket, policy) for _ in range(2)] == [True, False]
    clock.now += 60  # never more than the burst
    assert [await c.take_token(bucket, policy) for _ in range(4)] == [True, True, True, False]


async def test_a_nonce_is_claimed_once_except_by_its_own_retry(coordination):
    c, _ = coordination
    nonce = f"contract-{uuid4().hex}"
    assert await c.claim_nonce(nonce, "event-1", ttl_s=60)
    assert await c.claim_nonce(nonce, "event-1", ttl_s=60)  # the same message, retried
    assert not await c.claim_nonce(nonce, "event-2", ttl_s=60)


async def test_admission_attempts_claim_each_nonce_then_take_a_token_in_order(coordination):
    from fedstream.security.rate_limit import BucketPolicy
    from fedstream.storage.coordination import AdmissionAttempt, AttemptVerdict

    c, _ = coordination
    bucket, policy, tag = f"contract-{uuid4().hex[:8]}", BucketPolicy(rate_per_s=1, burst=2), uuid4().hex

    def attempt(nonce: str, owner: str) -> AdmissionAttempt:
        return AdmissionAttempt(f"{tag}:{nonce}", owner, 60, bucket, policy)

    verdicts = await c.admission_attempts([
        attempt("n1", "e1"), attempt("n1", "e2"),  # the second is a replay: it takes no token
        attempt("n2", "e3"), attempt("n3", "e4"),  # the burst of 2 is spent by e1 and e3
    ])
    assert verdicts == [AttemptVerdict.OK, AttemptVerdict.REPLAYED, AttemptVerdict.OK, AttemptVerdict.RATE_LIMITED]
    # a retried batch: the same owners keep their nonces (the bucket, now empty, still decides)
    assert await c.admission_attempts([attempt("n1", "e1")]) == [AttemptVerdict.RATE_LIMITED]
    assert await c.admission_attempts([]) == []


async def test_tokens_left_reads_buckets_without_taking(coordination):
    from fedstream.security.rate_limit import BucketPolicy

    c, clock = coordination
    bucket, policy = f"contract-{uuid4().hex[:8]}", BucketPolicy(rate_per_s=2, burst=3)
    assert await c.tokens_left([bucket], policy) == [3.0]  # a new bucket is full
    assert [await c.take_token(bucket, policy) for _ in range(3)] == [True, True, True]
    clock.now += 0.25  # half a token refilled
    assert await c.tokens_left([bucket, f"{bucket}-new"], policy) == [0.5, 3.0]
    assert await c.tokens_left([bucket], policy) == [0.5]  # reading took nothing
    assert await c.tokens_left([], policy) == []
