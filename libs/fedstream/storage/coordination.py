"""Coordination state in Redis: live participants (heartbeat TTL) and the current-round cache.

Everything here may be lost: liveness is re-learned from the next heartbeats, and a cache miss falls
back to PostgreSQL (the caller's job), so flushing Redis loses no data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import redis.asyncio as aioredis

from fedstream.security.rate_limit import BucketPolicy, available, take

PREFIX = "fedstream"

# The token bucket of fedstream.security.rate_limit, atomically: no two instances take the same token.
_TAKE_TOKEN = """
local function take(key, rate, burst, now)
    local state = redis.call('HMGET', key, 'tokens', 'last')
    local tokens, last = tonumber(state[1]), tonumber(state[2])
    if tokens == nil or last == nil then tokens, last = burst, now end
    tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
    local allowed = 0
    if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
    redis.call('HSET', key, 'tokens', tostring(tokens), 'last', tostring(now))
    redis.call('PEXPIRE', key, math.ceil(1000 * burst / rate) + 1000)
    return allowed
end
"""
TOKEN_BUCKET = _TAKE_TOKEN + "return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))"

# One admission attempt, atomically: claim the message's nonce (a repeat by the same owner — a retried
# batch — still counts as its own), then take a token from the sender's bucket. A replay takes no token.
ADMISSION_ATTEMPT = _TAKE_TOKEN + """
local claimed = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
if not claimed and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'replayed' end
if take(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])) == 1 then return 'ok' end
return 'rate_limited'
"""


class AttemptVerdict(StrEnum):
    OK = "ok"
    REPLAYED = "replayed"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class AdmissionAttempt:
    nonce: str  # unique per message (key id and nonce)
    owner: str  # the message's event id: a retried batch is not its own replay
    nonce_ttl_s: float
    bucket: str  # the sender's rate-limit bucket
    policy: BucketPolicy


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

    async def admission_attempts(self, attempts: list[AdmissionAttempt]) -> list[AttemptVerdict]:
        """Each attempt's nonce claim then token take, in order, in one round trip; a verdict per attempt."""

    async def tokens_left(self, buckets: list[str], policy: BucketPolicy) -> list[float]:
        """The tokens in each bucket now, taking none (one round trip)."""


class RedisCoordination:
    def __init__(self, client: aioredis.Redis, clock: Any = time.time) -> None:
        self.client, self.clock = client, clock
        self._attempt = client.register_script(ADMISSION_ATTEMPT)

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

    async def admission_attempts(self, attempts: list[AdmissionAttempt]) -> list[AttemptVerdict]:
        if not attempts:
            return []
        now = repr(self.clock())
        async with self.client.pipeline(transaction=False) as pipe:  # each script is atomic; in order
            for a in attempts:
                await self._attempt(
                    keys=[f"{PREFIX}:nonce:{a.nonce}", f"{PREFIX}:bucket:{a.bucket}"],
                    args=[a.owner, max(1, int(a.nonce_ttl_s * 1000)), a.policy.rate_per_s, a.policy.burst, now],
                    client=pipe,
                )
            results = await pipe.execute()
        return [AttemptVerdict(r.decode() if isinstance(r, bytes) else r) for r in results]

    async def tokens_left(self, buckets: list[str], policy: BucketPolicy) -> list[float]:
        if not buckets:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for bucket in buckets:
                pipe.hmget(f"{PREFIX}:bucket:{bucket}", "tokens", "last")
            states = await pipe.execute()
        now = self.clock()
        return [available(_number(tokens), _number(last), now, policy) for tokens, last in states]

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

    async def admission_attempts(self, attempts: list[AdmissionAttempt]) -> list[AttemptVerdict]:
        verdicts = []
        for a in attempts:
            if not await self.claim_nonce(a.nonce, a.owner, a.nonce_ttl_s):
                verdicts.append(AttemptVerdict.REPLAYED)
            elif not await self.take_token(a.bucket, a.policy):
                verdicts.append(AttemptVerdict.RATE_LIMITED)
            else:
                verdicts.append(AttemptVerdict.OK)
        return verdicts

    async def tokens_left(self, buckets: list[str], policy: BucketPolicy) -> list[float]:
        return [available(*self.buckets.get(bucket, (None, None)), self.clock(), policy) for bucket in buckets]

    def flush(self) -> None:
        """What ``FLUSHALL`` does to Redis: coordination state is gone."""
        self.live.clear(), self.rounds.clear(), self.buckets.clear(), self.nonces.clear()


def _number(raw: bytes | None) -> float | None:
    return None if raw is None else float(raw)
