"""WAL archiving + a base backup restore the project's PostgreSQL to a point in time, audit trail intact."""

from __future__ import annotations

import asyncpg
import pytest

from fedstream.stack.postgres import PostgreSQL
from fedstream.stack.recovery import archive_current_wal, base_backup, restore_to
from services.compliance.adapters import APPEND_LOCK
from services.compliance.verify import verify_database

pytestmark = pytest.mark.integration


async def test_restore_to_a_point_in_time_keeps_the_audit_trail_intact(stack, federation, tmp_path):
    postgres = PostgreSQL(stack.settings.state_dir)
    await base_backup(postgres, tmp_path / "base")
    conn = await asyncpg.connect(stack.endpoints.database_url)
    try:
        async with conn.transaction():
            # hold the audit trail's append lock: no append can commit between the target and the count
            await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
            target = await conn.fetchval("SELECT clock_timestamp()")
            rows_at_target = await conn.fetchval("SELECT count(*) FROM audit_trail")
            head_at_target = await conn.fetchval("SELECT row_hash FROM audit_trail ORDER BY seq DESC LIMIT 1")
        # after the target: a change the restore must not contain
        await conn.execute("CREATE TABLE after_the_target (x int)")
    finally:
        await conn.close()
    await archive_current_wal(stack.endpoints.database_url)

    restored = await restore_to(postgres, tmp_path / "base", target, tmp_path / "restore")
    try:
        conn = await asyncpg.connect(restored.database_url.rsplit("/", 1)[0] + "/fedstream")
        try:
            assert await conn.fetchval("SELECT count(*) FROM audit_trail") == rows_at_target
            assert await conn.fetchval("SELECT row_hash FROM audit_trail ORDER BY seq DESC LIMIT 1") == head_at_target
            assert await conn.fetchval("SELECT to_regclass('after_the_target')") is None
        finally:
            await conn.close()
        result = await verify_database(restored.database_url.rsplit("/", 1)[0] + "/fedstream")
        assert result.broken is None and result.rows == rows_at_target
    finally:
        restored.stop()
