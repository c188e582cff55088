"""Coordination state in Redis: live participants (heartbeat TTL) and the current-round cache.

Everything here may be lost: liveness is re-learned from the next heartbeats, and a cache miss falls
back to PostgreSQL (the caller's job), so flushing Redis loses no data.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

import redis.asyncio as aioredis

PREFIX = "fedstream"


class Coordination(Protocol):
    async def record_heartbeat(self, federation_id: str, participant_id: str, ttl_s: float) -> None: ...

    async def live_participants(self, federation_id: str) -> set[str]: ...

    async def cache_round(self, federation_id: str, state: dict[str, Any], ttl_s: float) -> None: ...

    async def cached_round(self, federation_id: str) -> dict[str, Any] | None: ...


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

    async def close(self) -> None:
        await self.client.aclose()


class InMemoryCoordination:
    """Fake with the same expiry semantics, driven by an injectable clock."""

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock
        self.live: dict[str, dict[str, float]] = {}
        self.rounds: dict[str, tuple[float, dict[str, Any]]] = {}

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
