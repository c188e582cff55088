"""Tenant-scoped transactions over PostgreSQL row-level security (infra/migrations/017_tenancy.sql).

Inside ``tenant_transaction`` the connection acts as one application role (``SET LOCAL ROLE``) for one
tenant (``set_config('fedstream.tenant', …, true)``). Both are transaction-local: at commit or rollback
PostgreSQL itself puts the connection back, so a pooled connection handed to the next caller carries
neither the role nor the tenant on. The login role must be a member of the application role.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum

import asyncpg

TENANT_SETTING = "fedstream.tenant"


class DbRole(StrEnum):
    """The NOLOGIN group roles of migration 017: none owns anything, none bypasses RLS."""

    SERVICE = "fedstream_service"
    TENANT = "fedstream_tenant"
    AUDITOR = "fedstream_auditor"
    DPO = "fedstream_dpo"
    ADMIN = "fedstream_admin"


class TenantRequired(ValueError):
    """A tenant-scoped role was asked for without a tenant (it would see nothing, silently)."""


@asynccontextmanager
async def tenant_transaction(
    pool: asyncpg.Pool, role: DbRole, tenant: str | None = None, *, readonly: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on a pooled connection as ``role`` for ``tenant`` (required for ``DbRole.TENANT``)."""
    role = DbRole(role)  # only the known roles: the name goes into SQL as an identifier
    if role is DbRole.TENANT and not tenant:
        raise TenantRequired("a site operator's transaction needs its tenant")
    async with pool.acquire() as conn, conn.transaction(readonly=readonly):
        await conn.execute(f'SET LOCAL ROLE "{role.value}"')
        await conn.execute("SELECT set_config($1, $2, true)", TENANT_SETTING, tenant or "")
        yield conn
