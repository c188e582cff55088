"""Adapters under contract: each test runs once with the in-memory fake and once with PostgreSQL.

PostgreSQL repositories run inside a transaction that is rolled back afterwards, so contract tests
leave nothing behind in the shared database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from fedstream.storage.postgres import create_pool


@pytest.fixture(scope="session")
async def pg_pool(infra):
    pool = await create_pool(infra.endpoints.database_url)
    yield pool
    await pool.close()


def repository(fake: Callable[[], Any], real: Callable[[asyncpg.Connection], Any]):
    """A parametrised fixture: the fake, then the real adapter on a rolled-back connection."""

    @pytest.fixture(params=["fake", "postgres"])
    async def fixture(request, pg_pool):
        if request.param == "fake":
            yield fake()
            return
        async with pg_pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                yield real(conn)
            finally:
                await tx.rollback()

    return fixture
