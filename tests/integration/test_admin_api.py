"""The admin API on the real stack: PostgreSQL row-level security scopes a site operator's reads, and each
read of participant data reaches the hash-chained audit trail through Kafka and the compliance service."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pyotp
import pytest

from fedstream.api.adapters import PostgresUserDirectory
from fedstream.api.auth import issue_credentials, token_hash
from fedstream.api.bootstrap import build_app, totp_sealer
from fedstream.storage.postgres import create_pool
from schemas.access import ApiRole, ParticipantDataAccessed
from schemas.identity import RegisterBaa
from tests.tenancy_helpers import enrol

pytestmark = pytest.mark.integration


async def audit_rows(pool, federation: str, event_type: str) -> int:
    return await pool.fetchval("SELECT count(*) FROM audit_trail WHERE federation_id = $1 AND event_type = $2",
                               federation, event_type)


async def wait_for_audit_rows(pool, federation: str, event_type: str, expected: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (found := await audit_rows(pool, federation, event_type)) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{found} of {expected} {event_type} rows in the audit trail after {timeout}s")
        await asyncio.sleep(0.2)  # polling a condition in PostgreSQL, bounded by the deadline


async def test_site_operator_reads_are_tenant_scoped_and_audited(stack):
    s = uuid4().hex[:8]
    federation, org_a, org_b = f"f-{s}", f"org-a-{s}", f"org-b-{s}"
    pool = await create_pool(stack.endpoints.database_url)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO federations (federation_id, project_name, use_case, crypto, spec, created_at) "
                               "VALUES ($1, 'p', 'u', 'none', '{}'::jsonb, $2)", federation, datetime.now(UTC))
            for p, organisation in ((f"pa-{s}", org_a), (f"pb-{s}", org_b)):
                await enrol(conn, p, organisation)
                await conn.execute("INSERT INTO participants VALUES ($1, $2, $3, 'hospital', now())", federation, p, organisation)
        site, dpo = issue_credentials(f"site-{s}"), issue_credentials(f"dpo-{s}")
        directory = PostgresUserDirectory(pool, totp_sealer(stack.endpoints))  # the key manager the API uses
        await directory.add(f"site-{s}", ApiRole.SITE_OPERATOR, org_a, token_hash(site.token), site.totp_secret)
        await directory.add(f"dpo-{s}", ApiRole.DPO, None, token_hash(dpo.token), dpo.totp_secret)

        app = build_app(stack.endpoints)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            as_site = await client.get(f"/federations/{federation}/participants", headers={"Authorization": f"Bearer {site.token}"})
            as_dpo = await client.get(f"/federations/{federation}/participants", headers={"Authorization": f"Bearer {dpo.token}"})
            refused = await client.get("/audit/trail", headers={"Authorization": f"Bearer {site.token}"})
            baa = await client.post(f"/organisations/{org_a}/baas", json={"reference": "baa-1", "expires_at": "2030-01-01T00:00:00Z"},
                                    headers={"Authorization": f"Bearer {dpo.token}", "X-TOTP": pyotp.TOTP(dpo.totp_secret).now()})

        assert as_site.status_code == 200 and [r["participant_id"] for r in as_site.json()] == [f"pa-{s}"]
        assert as_dpo.status_code == 200 and {r["participant_id"] for r in as_dpo.json()} == {f"pa-{s}", f"pb-{s}"}
        assert refused.status_code == 403
        assert baa.status_code == 202, baa.text
        # Compliance chains both reads (and not the refused one, which read nothing).
        await wait_for_audit_rows(pool, federation, ParticipantDataAccessed.TYPE, 2)
        assert await audit_rows(pool, federation, ParticipantDataAccessed.TYPE) == 2
        # The privileged action went out as a command, which compliance audits like every message.
        await wait_for_audit_rows(pool, org_a, RegisterBaa.TYPE, 1)
    finally:
        await pool.close()


async def test_totp_secrets_are_sealed_at_rest(stack):
    s = uuid4().hex[:8]
    issued = issue_credentials(f"dpo-{s}")
    pool = await create_pool(stack.endpoints.database_url)
    try:
        await PostgresUserDirectory(pool, totp_sealer(stack.endpoints)).add(
            f"dpo-{s}", ApiRole.DPO, None, token_hash(issued.token), issued.totp_secret)
        columns = {r["column_name"] for r in await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'admin_api' AND table_name = 'users'")}
        row = await pool.fetchval("SELECT to_jsonb(u)::text FROM admin_api.users u WHERE user_id = $1", f"dpo-{s}")
    finally:
        await pool.close()
    assert "totp_secret" not in columns and "totp_secret_sealed" in columns
    raw = base64.b32decode(issued.totp_secret)
    # The whole row as a dump shows it (bytea as hex): neither the secret nor its bytes, in any spelling.
    for form in (issued.totp_secret, issued.totp_secret.lower(), raw.hex(), base64.b64encode(raw).decode()):
        assert form not in row
