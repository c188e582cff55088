"""Token bucket: ``burst`` tokens, refilled at ``rate_per_s``; each admission attempt takes one.

The pure rule the Redis Lua script (``fedstream.storage.coordination``) runs atomically, and the
in-memory fake runs as is.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BucketPolicy:
    # A participant submits about one update per round: a few per second is already generous.
    rate_per_s: float = 2.0
    burst: float = 10.0


def take(tokens: float | None, last: float | None, now: float, policy: BucketPolicy) -> tuple[bool, float]:
    """Whether one token can be taken from the bucket, and the tokens left afterwards."""
    tokens = available(tokens, last, now, policy)
    if tokens >= 1.0:
        return True, tokens - 1.0
    return False, tokens


def available(tokens: float | None, last: float | None, now: float, policy: BucketPolicy) -> float:
    """The tokens in the bucket at ``now``: what was left at ``last``, refilled since (a new bucket is full)."""
    if tokens is None or last is None:
        return policy.burst
    return min(policy.burst, tokens + max(0.0, now - last) * policy.rate_per_s)
