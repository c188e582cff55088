"""Tenant isolation in PostgreSQL (issue 5 §3): the role × table × command matrix, the rows each role sees,
and pooled connections on which interleaved tenants never see each other's rows."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from fedstream.storage.postgres import create_pool
from fedstream.storage.tenancy import DbRole, TenantRequired, tenant_transaction
from tests.tenancy_helpers import enrol

pytestmark = pytest.mark.integration

S, T, AU, D, AD = DbRole.SERVICE, DbRole.TENANT, DbRole.AUDITOR, DbRole.DPO, DbRole.ADMIN
ALL_ROLES = (S, T, AU, D, AD)
PARTICIPANT_TABLES = ("privacy_ledger", "privacy_refusals", "updates", "update_rejections", "participants",
                      "participant_enrolments", "model_lineage", "ingestion_admissions", "aggregation_contributions",
                      "aggregation_parked", "validation_evaluations")

# Who may SELECT what (writes: the services only). Stated here by hand, not derived from the migration.
READERS: dict[str, set[DbRole]] = {
    "privacy_ledger": {S, T, AU, D},
    "updates": {S, T, D},
    "participants": {S, T, D, AD},
    "participant_enrolments": {S, T, D, AD},
    "aggregation_contributions": {S, T, D},
    "audit_trail": {S, AU, D},
    "federations": {S, T, AU, D, AD},
    "registry_state": {S},
    "outbox": {S},
    "admin_api.users": set(),
    "round_status": {S, T, AU, D, AD},
    "privacy_budget_remaining": {S, T, AU, D},
}
WRITERS: dict[str, dict[str, set[DbRole]]] = {
    "privacy_ledger": {"INSERT": {S}, "UPDATE": {S}, "DELETE": {S}},
    "participant_enrolments": {"INSERT": {S}, "UPDATE": {S}, "DELETE": {S}},
    "federations": {"INSERT": {S}, "UPDATE": {S}, "DELETE": {S}},
    "outbox": {"INSERT": {S}, "UPDATE": {S}, "DELETE": {S}},
    "audit_trail": {"INSERT": {S}, "UPDATE": set(), "DELETE": set()},  # history is never rewritten
    "admin_api.users": {"INSERT": set(), "UPDATE": set(), "DELETE": set()},
}
MATRIX = [(role, table, "SELECT", role in readers) for table, readers in READERS.items() for role in ALL_ROLES] + [
    (role, table, command, role in allowed)
    for table, commands in WRITERS.items() for command, allowed in commands.items() for role in ALL_ROLES
]


@pytest.fixture(scope="module")
async def pool(infra):
    pool = await create_pool(infra.endpoints.database_url, min_size=2, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture(scope="module")
async def tenants(pool):
    """Two organisations, A with two participants and B with one, each with ledger, update and registry rows."""
    suffix = uuid4().hex[:8]
    federation = f"f-{suffix}"
    members = {f"org-a-{suffix}": [f"pa1-{suffix}", f"pa2-{suffix}"], f"org-b-{suffix}": [f"pb1-{suffix}"]}
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO federations (federation_id, project_name, use_case, crypto, spec, created_at) "
                           "VALUES ($1, 'p', 'u', 'none', '{}'::jsonb, $2)", federation, now)
        for organisation, participants in members.items():
            for p in participants:
                await enrol(conn, p, organisation)
                await conn.execute("INSERT INTO participants VALUES ($1, $2, $3, 'hospital', $4)", federation, p, organisation, now)
                for round_number in (1, 2):
                    await conn.execute("INSERT INTO privacy_ledger (update_id, federation_id, participant_id, round, mechanism, "
                                       "charged_at) VALUES ($1, $2, $3, $4, 'none', $5)", uuid4(), federation, p, round_number, now)
                await conn.execute("INSERT INTO updates VALUES ($1, $2, 1, $3, $4, 1, 1, NULL, $5)", uuid4(), federation, p, "0" * 64, now)
    return federation, members


# --- the matrix --------------------------------------------------------------------------------


def statement(table: str, command: str, first_column: str) -> str:
    # No row is touched: privileges are checked when the statement starts, whether or not rows match.
    return {
        "SELECT": f"SELECT * FROM {table} LIMIT 1",
        "INSERT": f"INSERT INTO {table} SELECT * FROM {table} WHERE false",
        "UPDATE": f"UPDATE {table} SET {first_column} = {first_column} WHERE false",
        "DELETE": f"DELETE FROM {table} WHERE false",
    }[command]


@pytest.mark.parametrize(("role", "table", "command", "allowed"), MATRIX,
                         ids=[f"{r.name.lower()}-{t}-{c}-{'ok' if a else 'refused'}" for r, t, c, a in MATRIX])
async def test_role_table_command_matrix(pool, tenants, role, table, command, allowed):
    async with pool.acquire() as conn:
        first_column = await conn.fetchval("SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum = 1", table)
    try:
        async with tenant_transaction(pool, role, "org-x") as conn:
            await conn.execute(statement(table, command, first_column))
    except asyncpg.InsufficientPrivilegeError:
        assert not allowed, f"{role} was refused {command} on {table}"
    else:
        assert allowed, f"{role} may {command} on {table}"


# --- the rows each role sees -------------------------------------------------------------------


async def visible(pool, role: DbRole, tenant: str | None, table: str, federation: str) -> set[str]:
    async with tenant_transaction(pool, role, tenant, readonly=True) as conn:
        rows = await conn.fetch(f"SELECT participant_id FROM {table} WHERE participant_id LIKE '%' || $1",
                                federation.removeprefix("f-"))
    return {r["participant_id"] for r in rows}


@pytest.mark.parametrize("table", ["privacy_ledger", "updates", "participants", "participant_enrolments"])
async def test_a_site_operator_sees_only_its_organisations_participants(pool, tenants, table):
    federation, members = tenants
    for organisation, participants in members.items():
        assert await visible(pool, T, organisation, table, federation) == set(participants)
    assert await visible(pool, T, "org-nobody", table, federation) == set()


async def test_oversight_roles_see_every_tenant(pool, tenants):
    federation, members = tenants
    everyone = {p for ps in members.values() for p in ps}
    assert await visible(pool, AU, None, "privacy_ledger", federation) == everyone
    assert await visible(pool, D, None, "updates", federation) == everyone
    assert await visible(pool, AD, None, "participants", federation) == everyone
    assert await visible(pool, S, None, "privacy_ledger", federation) == everyone


async def test_the_tenant_role_without_a_tenant_sees_nothing(pool, tenants):
    federation, _ = tenants
    with pytest.raises(TenantRequired):
        async with tenant_transaction(pool, T, None):
            pass
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f'SET LOCAL ROLE "{T.value}"')  # no tenant set at all
        assert await conn.fetchval("SELECT count(*) FROM privacy_ledger WHERE federation_id = $1", federation) == 0


async def test_the_budget_view_runs_with_the_callers_rights(pool, tenants):
    async with pool.acquire() as conn:
        views = await conn.fetch("SELECT c.relname, c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = 'public' AND c.relkind = 'v'")
    assert views and all("security_invoker=true" in (v["reloptions"] or []) for v in views), views


async def test_application_roles_own_nothing_and_cannot_bypass_rls(pool):
    names = [r.value for r in DbRole]
    async with pool.acquire() as conn:
        roles = await conn.fetch("SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = ANY($1)", names)
        login = await conn.fetchrow("SELECT rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb, "
                                    "array(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
                                    "WHERE m.member = r.oid) AS member_of FROM pg_roles r WHERE rolname = 'fedstream_app'")
        names.append("fedstream_app")
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = ANY($1)", names)
        owned += await conn.fetchval(
            "SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = ANY($1)", names)
        forced = await conn.fetch("SELECT relname FROM pg_class WHERE relname = ANY($1) AND relrowsecurity AND relforcerowsecurity",
                                  list(PARTICIPANT_TABLES))
    # The services' login: may log in, and nothing more than the services' group gives it.
    assert login["rolcanlogin"] and not any(login[k] for k in ("rolsuper", "rolbypassrls", "rolcreaterole", "rolcreatedb"))
    assert login["member_of"] == [DbRole.SERVICE.value]
    assert sorted(r["rolname"] for r in roles) == sorted(names[:-1])
    assert not any(r["rolsuper"] or r["rolbypassrls"] or r["rolcanlogin"] for r in roles)
    assert owned == 0
    assert sorted(r["relname"] for r in forced) == sorted(PARTICIPANT_TABLES)


# --- pooled connections ------------------------------------------------------------------------


async def test_interleaved_tenants_on_a_pool_of_two_never_see_each_other(pool, tenants):
    federation, members = tenants
    organisations = list(members)
    seen_settings: list[tuple[str | None, str]] = []

    async def as_tenant(organisation: str, fail: bool) -> None:
        try:
            async with tenant_transaction(pool, T, organisation, readonly=True) as conn:
                await asyncio.sleep(0)  # let the other tenant's transaction run on the other connection
                ids = {r["participant_id"] for r in await conn.fetch(
                    "SELECT participant_id FROM privacy_ledger WHERE federation_id = $1", federation)}
                assert ids == set(members[organisation])
                assert await conn.fetchval("SELECT fedstream_current_tenant()") == organisation
                if fail:
                    raise RuntimeError("a transaction that fails must reset as well")
        except RuntimeError:
            assert fail

    async def between() -> None:
        async with pool.acquire() as conn:  # no transaction: what the connection carries on, if anything
            seen_settings.append(tuple(await conn.fetchrow(
                "SELECT nullif(current_setting('fedstream.tenant', true), ''), current_user::text")))

    rng = random.Random(7)
    work = []
    for i in range(120):
        work.append(as_tenant(organisations[i % 2], fail=rng.random() < 0.2))
        if i % 3 == 0:
            work.append(between())
    await asyncio.gather(*work)

    session_user = seen_settings[0][1]
    assert session_user not in {r.value for r in DbRole}
    assert seen_settings and all(s == (None, session_user) for s in seen_settings), seen_settings


async def test_a_non_superuser_owner_migrates_and_still_works_under_forced_rls(infra):
    """Where the stack's login is not a superuser, the owner is itself subject to FORCE ROW LEVEL SECURITY;
    the migration makes it a member of the services' group, so its own reads and writes still see every row."""
    from urllib.parse import urlsplit, urlunsplit

    from fedstream.storage.postgres import apply_migrations

    s = uuid4().hex[:8]
    owner, database = f"owner_{s}", f"db_{s}"
    admin = await asyncpg.connect(infra.endpoints.database_url)
    try:
        await admin.execute(f'CREATE ROLE "{owner}" LOGIN CREATEROLE')
        await admin.execute(f'CREATE DATABASE "{database}" OWNER "{owner}"')
        # The group roles are cluster-wide and already exist (the stack's database made them), so this owner
        # did not create them: a DBA grants it membership, as in a managed deployment.
        await admin.execute(f'GRANT {", ".join(r.value for r in DbRole)} TO "{owner}"')
    finally:
        await admin.close()
    url = urlsplit(infra.endpoints.database_url)
    owner_url = urlunsplit(url._replace(netloc=f"{owner}@{url.hostname}:{url.port}", path=f"/{database}"))
    await apply_migrations(owner_url)
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute("INSERT INTO participant_enrolments (participant_id, organisation) VALUES ('p1', 'org-a')")
        assert await conn.fetchval("SELECT count(*) FROM participant_enrolments") == 1
        assert not await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        async with conn.transaction():
            await conn.execute('SET LOCAL ROLE "fedstream_tenant"')
            await conn.execute("SELECT set_config('fedstream.tenant', 'org-b', true)")
            assert await conn.fetchval("SELECT count(*) FROM participant_enrolments") == 0
    finally:
        await conn.close()
