"""Least privilege on the real stack: the services, the key custodian and the admin API connect as logins
that own nothing and cannot bypass row-level security (migrations 017, 019), those logins prove a password,
and what they still need an owner for (partitions ahead) goes through one narrow SECURITY DEFINER door."""

from __future__ import annotations

import asyncio
import stat
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import pytest

from fedstream.api.bootstrap import build_app
from fedstream.connection_security import postgres_url
from fedstream.stack.postgres import API_LOGIN, APP_LOGIN
from fedstream.storage.postgres import MIGRATIONS_DIR, apply_migrations, wait_until_migrated
from schemas.topics import ADMIN_API, KEY_CUSTODY, SERVICES

pytestmark = pytest.mark.integration


async def logins_of(owner_url: str, application_names: set[str], timeout_s: float = 90) -> dict[str, set[str]]:
    """application_name → the logins its connections use, once every one of them is connected."""
    conn = await asyncpg.connect(owner_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            rows = await conn.fetch("SELECT application_name, usename::text FROM pg_stat_activity "
                                    "WHERE application_name = ANY($1::text[])", sorted(application_names))
            seen: dict[str, set[str]] = {}
            for r in rows:
                seen.setdefault(r["application_name"], set()).add(r["usename"])
            if set(seen) == application_names or time.monotonic() > deadline:
                return seen
            await asyncio.sleep(0.2)  # polling pg_stat_activity until every process has its pool, bounded above
    finally:
        await conn.close()


async def role_flags(conn: asyncpg.Connection, role: str) -> tuple[bool, bool, bool]:
    row = await conn.fetchrow("SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = $1", role)
    return row["rolsuper"], row["rolbypassrls"], row["rolcreaterole"]


async def test_every_service_and_the_key_custodian_connect_as_the_application_login(stack):
    names = {f"fedstream-{name}-0" for name in (*SERVICES, KEY_CUSTODY)}
    seen = await logins_of(stack.endpoints.database_url, names)
    assert seen == dict.fromkeys(names, {APP_LOGIN})
    conn = await asyncpg.connect(stack.endpoints.database_url)
    try:
        assert await role_flags(conn, APP_LOGIN) == (False, False, False)
        assert not await conn.fetchval("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
                                       "WHERE r.rolname = $1", APP_LOGIN)  # owns nothing
    finally:
        await conn.close()


async def test_the_admin_api_connects_as_its_own_login(stack):
    app = build_app(stack.endpoints)
    async with app.router.lifespan_context(app):
        seen = await logins_of(stack.endpoints.database_url, {f"fedstream-{ADMIN_API}"})
    assert seen == {f"fedstream-{ADMIN_API}": {API_LOGIN}}
    conn = await asyncpg.connect(stack.endpoints.database_url)
    try:
        assert await role_flags(conn, API_LOGIN) == (False, False, False)
    finally:
        await conn.close()


async def test_the_admin_api_login_spends_totp_steps_but_cannot_overwrite_secrets(infra):
    conn = await asyncpg.connect(infra.endpoints.api_database_url)
    try:
        assert await conn.fetchval("SELECT current_user") == API_LOGIN
        await conn.execute("UPDATE admin_api.users SET totp_last_step = totp_last_step WHERE false")
        for statement in ("UPDATE admin_api.users SET totp_secret_sealed = totp_secret_sealed WHERE false",
                          "UPDATE admin_api.users SET role = role WHERE false", "DELETE FROM admin_api.users"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_application_login_cannot_rewrite_history_nor_create_anything(infra):
    conn = await asyncpg.connect(infra.endpoints.app_database_url)
    try:
        assert await conn.fetchval("SELECT current_user") == APP_LOGIN
        for statement in ("UPDATE audit_trail SET source = source", "DELETE FROM audit_trail", "TRUNCATE audit_trail",
                          "UPDATE audit_checkpoints SET signature = signature", "DELETE FROM audit_checkpoints",
                          "CREATE TABLE planted (x int)", "ALTER TABLE audit_trail DISABLE TRIGGER ALL",
                          "SELECT fedstream_create_metric_partitions('round_metrics')",
                          # the migration ledger: a row there would make a future migration look applied
                          "INSERT INTO schema_migrations (name) VALUES ('999_never_applied.sql')",
                          "DELETE FROM schema_migrations"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        # Reading the trail is what the services do (compliance appends and verifies it).
        assert await conn.fetchval("SELECT count(*) >= 0 FROM audit_trail")
        # A login with nothing left to apply may call apply_migrations: no CREATE needed once the table exists.
        assert await apply_migrations(infra.endpoints.app_database_url) == []
    finally:
        await conn.close()


async def test_logins_need_their_password_over_tcp(infra):
    app_url = infra.endpoints.app_database_url
    parts = urlsplit(app_url)
    assert parts.username == APP_LOGIN and parts.password  # the stack generated one and the URL carries it
    wrong = postgres_url(app_url, password=parts.password + "x")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)
    without = app_url.replace(f":{parts.password}@", "@")
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        await asyncpg.connect(without)
    api = await asyncpg.connect(infra.endpoints.api_database_url)  # the right one works, for both logins
    await api.close()
    logins_file = infra.settings.state_dir / "postgres" / "logins.json"
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600


async def test_the_application_login_creates_the_time_series_partitions_ahead(infra):
    """The furthest partition validation keeps ahead is dropped by the owner and made again by the app login."""
    owner = await asyncpg.connect(infra.endpoints.database_url)
    app = await asyncpg.connect(infra.endpoints.app_database_url)
    try:
        if await owner.fetchval("SELECT NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'round_metrics'::regclass)"):
            pytest.fail("round_metrics is not natively partitioned on the embedded PostgreSQL")
        month = await owner.fetchval("SELECT to_char(date_trunc('month', now() + interval '3 months'), 'YYYYMM')")
        partition = f"round_metrics_{month}"
        await owner.execute(f'DROP TABLE IF EXISTS "{partition}"')
        assert await app.fetchval("SELECT fedstream_extend_metric_partitions()") >= 1
        assert await owner.fetchval("SELECT to_regclass($1) IS NOT NULL", partition)
        # The new partition takes rows through its parent, written by the app login.
        await app.execute("INSERT INTO round_metrics (time, federation_id, round, outcome, contributions) "
                          "VALUES ($1, 'f-least-privilege', 1, 'released', 3)",
                          datetime(int(month[:4]), int(month[4:]), 15, tzinfo=UTC))
        assert await owner.fetchval(f'SELECT count(*) FROM "{partition}" WHERE federation_id = $1', "f-least-privilege") == 1
    finally:
        await app.close()
        await owner.close()


async def test_a_login_that_may_not_migrate_waits_for_the_owner_and_names_what_is_missing(infra, tmp_path):
    for path in MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    await wait_until_migrated(infra.endpoints.app_database_url, tmp_path, timeout_s=5)  # all applied: returns
    (tmp_path / "999_not_yet.sql").write_text("SELECT 1;")
    with pytest.raises(RuntimeError, match="999_not_yet.sql"):
        await wait_until_migrated(infra.endpoints.app_database_url, tmp_path, timeout_s=1)
