"""The local stack's Redis in the secured mode: a password is required, and it never shows on the command line."""

from __future__ import annotations

import asyncio

import psutil
import pytest
from redis.asyncio import Redis as Client
from redis.exceptions import AuthenticationError, ResponseError

from fedstream.stack.redis import Redis

pytestmark = pytest.mark.integration


async def test_secured_redis_requires_its_password(tmp_path):
    redis = Redis(tmp_path, secured=True)
    record = await redis.ensure_running()
    try:
        password = redis.password()
        assert password and redis.password_file.stat().st_mode & 0o777 == 0o600
        assert redis.config_file.stat().st_mode & 0o777 == 0o600
        assert password not in " ".join(psutil.Process(record.pid).cmdline())

        anonymous = Client.from_url(record.address, socket_timeout=5)
        with pytest.raises((AuthenticationError, ResponseError), match="(?i)auth"):
            await anonymous.set("k", "v")
        await anonymous.aclose()

        wrong = Client.from_url(record.address, socket_timeout=5, password="guess")
        with pytest.raises((AuthenticationError, ResponseError)):
            await wrong.ping()
        await wrong.aclose()

        client = Client.from_url(record.address, socket_timeout=5, password=password)
        assert await client.set("k", "v") and await client.get("k") == b"v"
        await client.aclose()
    finally:
        await asyncio.to_thread(redis.stop)
