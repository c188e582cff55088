"""Coordination state in Redis: live participants (heartbeat TTL) and the current-round cache.

Everything here may be lost: liveness is re-learned from the next heartbeats, and a cache miss falls
back to PostgreSQL (the caller's job), so flushing Redis loses no data.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import redis.asyncio as aioredis

from fedstream.security.rate_limit import BucketPolicy, take

PREFIX = "fedstream"

# The token bucket of fedstream.security.rate_limit, atomically: no two instances take the same token.
TOKEN_BUCKET = """
local policy_rate, policy_burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens, last = tonumber(state[1]), tonumber(state[2])
if tokens == nil or last == nil then tokens, last = policy_burst, now end
tokens = math.min(policy_burst, tokens + math.max(0, now - last) * policy_rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * policy_burst / policy_rate) + 1000)
return allowed
"""


class Coordination(Protocol):
    async def record_heartbeat(self, federation_id: str, participant_id: str, ttl_s: float) -> None: ...

    async def live_participants(self, federation_id: str) -> set[str]: ...

    async def cache_round(self, federation_id: str, state: dict[str, Any], ttl_s: float) -> None: ...

    async def cached_round(self, federation_id: str) -> dict[str, Any] | None: ...

    async def take_token(self, bucket: str, policy: BucketPolicy) -> bool:
        """Take one token from ``bucket`` (e.g. a participant's admission bucket); False if it is empty."""

    async def claim_nonce(self, nonce: str, owner: str, ttl_s: float) -> bool:
        """First claim of ``nonce`` (SET NX with a TTL); a repeat claim by the same ``owner`` (a retried
        batch) is still True. Losing this state is safe: the caller backs it with a durable constraint."""


class RedisCoordination:
    def __init__(self, client: aioredis.Redis, clock: Any = time.time) -> None:
        self.client, self.clock = client, clock

    @classmethod
    def from_url(cls, url: str) -> "RedisCoordination":
        return cls(aioredis.from_url(url))

    async def record_heartbeat(self, federation_id: str, participant_id: str, ttl_s: float) -> None:
        # A sorted set scored by expiry time: one key per federation, no SCAN to list who is live.
        key = f"{PREFIX}:live:{federation_id}"
        now = self.clock()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {participant_id: now + ttl_s})
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.expire(key, max(1, int(ttl_s * 2)))
            await pipe.execute()

    async def live_participants(self, federation_id: str) -> set[str]:
        members = await self.client.zrangebyscore(f"{PREFIX}:live:{federation_id}", self.clock(), "+inf")
        return {m.decode() for m in members}

    async def cache_round(self, federation_id: str, state: dict[str, Any], ttl_s: float) -> None:
        await self.client.set(f"{PREFIX}:round:{federation_id}", json.dumps(state), ex=max(1, int(ttl_s)))

    async def cached_round(self, federation_id: str) -> dict[str, Any] | None:
        raw = await self.client.get(f"{PREFIX}:round:{federation_id}")
        return None if raw is None else json.loads(raw)

    async def take_token(self, bucket: str, policy: BucketPolicy) -> bool:
        allowed = await self.client.eval(
            TOKEN_BUCKET, 1, f"{PREFIX}:bucket:{bucket}", policy.rate_per_s, policy.burst, repr(self.clock())
        )
        return bool(allowed)

    async def claim_nonce(self, nonce: str, owner: str, ttl_s: float) -> bool:
        key = f"{PREFIX}:nonce:{nonce}"
        if await self.client.set(key, owner, nx=True, px=max(1, int(ttl_s * 1000))):
            return True
        held = await self.client.get(key)
        return held is not None and held.decode() == owner

    async def close(self) -> None:
        await self.client.aclose()


class InMemoryCoordination:
    """Fake with the same expiry semantics, driven by an injectable clock."""

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock
        self.live: dict[str, dict[str, float]] = {}
        self.rounds: dict[str, tuple[float, dict[str, Any]]] = {}
        self.buckets: dict[str, tuple[float, float]] = {}
        self.nonces: dict[str, tuple[float, str]] = {}

    async def record_heartbeat(self, federation_id: str, participant_id: str, ttl_s: float) -> None:
        self.live.setdefault(federation_id, {})[participant_id] = self.clock() + ttl_s

    async def live_participants(self, federation_id: str) -> set[str]:
        now = self.clock()
        return {p for p, expiry in self.live.get(federation_id, {}).items() if expiry > now}

    async def cache_round(self, federation_id: str, state: dict[str, Any], ttl_s: float) -> None:
        self.rounds[federation_id] = (self.clock() + max(1, int(ttl_s)), json.loads(json.dumps(state)))

    async def cached_round(self, federation_id: str) -> dict[str, Any] | None:
        entry = self.rounds.get(federation_id)
        if entry is None or entry[0] <= self.clock():
            return None
        return entry[1]

    async def take_token(self, bucket: str, policy: BucketPolicy) -> bool:
        tokens, last = self.buckets.get(bucket, (None, None))
        allowed, left = take(tokens, last, self.clock(), policy)
        self.buckets[bucket] = (left, self.clock())
        return allowed

    async def claim_nonce(self, nonce: str, owner: str, ttl_s: float) -> bool:
        held = self.nonces.get(nonce)
        if held is not None and held[0] > self.clock():
            return held[1] == owner
        self.nonces[nonce] = (self.clock() + ttl_s, owner)
        return True

    def flush(self) -> None:
        """What ``FLUSHALL`` does to Redis: coordination state is gone."""
        self.live.clear(), self.rounds.clear(), self.buckets.clear(), self.nonces.clear()
