"""The running compliance service signs checkpoints of the live trail and publishes them on fedstream.audit;
an auditor verifies them from the published events alone and against the database."""

from __future__ import annotations

import asyncio
import time

import pytest
from typer.testing import CliRunner

from fedstream.cli.main import app
from fedstream.storage.postgres import connect
from services.compliance.checkpoints import check_checkpoints
from services.compliance.published import read_published_checkpoints

pytestmark = pytest.mark.integration


async def test_published_checkpoints_cover_the_federation_and_verify(stack, federation, monkeypatch):
    spec, _ = federation
    conn = await connect(stack.endpoints.database_url)
    try:
        # the federation's last audited row: a checkpoint must come to cover it
        last_row = await conn.fetchval("SELECT max(seq) FROM audit_trail WHERE federation_id = $1", spec.federation_id)
    finally:
        await conn.close()
    deadline, published = time.monotonic() + 120, []
    while not published or published[-1].tree_size < last_row:
        assert time.monotonic() < deadline, f"no checkpoint covering row {last_row} was published within 120 s"
        await asyncio.sleep(1)
        published = await read_published_checkpoints(stack.endpoints)

    assert check_checkpoints(published) == []  # an outsider's check: signatures, series, consistency proofs
    assert len({c.key_id for c in published}) == 1

    monkeypatch.setenv("FEDSTREAM_STATE_DIR", str(stack.settings.state_dir))
    runner = CliRunner()
    out = await asyncio.to_thread(runner.invoke, app, ["audit", "verify", "--published"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "audit trail intact" in out.output and f"trusted key {published[0].key_id}" in " ".join(out.output.split())
    out = await asyncio.to_thread(runner.invoke, app, ["audit", "checkpoints", "--published"], catch_exceptions=False)
    assert out.exit_code == 0 and str(published[-1].tree_size) in out.output, out.output
