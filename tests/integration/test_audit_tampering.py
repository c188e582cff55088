"""Tampering with the audit trail as the PostgreSQL superuser is detected, every kind of it, every time.

Each test gets its own fresh database (only the messaging, audit and checkpoint migrations), fills a
real trail through the PostgreSQL adapter, has the compliance checkpointer sign two checkpoints through
the real transaction layer, then bypasses the append-only triggers (``session_replication_role =
replica``) to tamper, and runs ``fedstream audit verify`` against it.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from fedstream.cli.main import app
from fedstream.messaging.codec import Record, decode
from fedstream.messaging.transaction import PostgresTransactions
from fedstream.storage.postgres import MIGRATIONS_DIR, apply_migrations, create_pool
from services.compliance.adapters import PostgresAuditRepository, read_checkpoints
from services.compliance.checkpointer import Checkpointer
from services.compliance.checkpoints import from_event, key_id_of, public_key_text
from services.compliance.domain import AuditEntry, chain, row_hash
from schemas.compliance import AuditCheckpointSigned
from schemas.topics import AUDIT

pytestmark = pytest.mark.integration

MIGRATIONS = ("001_messaging.sql", "007_compliance.sql", "015_audit_checkpoints.sql")
ROWS_AT_FIRST_CHECKPOINT, ROWS = 20, 30
T0 = datetime(2026, 3, 1, tzinfo=UTC)
COLUMNS = "seq, event_id, event_type, topic, federation_id, round, source, occurred_at, payload_sha256, prev_hash, row_hash"


def entry(i: int) -> AuditEntry:
    return AuditEntry(uuid4(), "io.fedstream.round.opened.v1", "fedstream.rounds", "tamper-test", i, "registry", T0,
                      f"{i:064x}")


@pytest.fixture
async def trail(infra, tmp_path, monkeypatch):
    """A fresh database holding a 30-row trail and checkpoints at 20 and 30 rows; yields (url, key id)."""
    monkeypatch.setenv("FEDSTREAM_STATE_DIR", str(infra.settings.state_dir))  # the CLI finds the stack there
    admin = await asyncpg.connect(infra.endpoints.database_url)
    name = f"audit_tamper_{uuid4().hex[:12]}"
    await admin.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(infra.endpoints.database_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for m in MIGRATIONS:
        shutil.copy(MIGRATIONS_DIR / m, migrations / m)
    await apply_migrations(url, migrations)
    key = Ed25519PrivateKey.generate()
    try:
        await _fill_and_checkpoint(url, key)
        yield url, key_id_of(public_key_text(key))
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()


async def _fill_and_checkpoint(url: str, key: Ed25519PrivateKey) -> None:
    pool = await create_pool(url)
    try:
        transactions = PostgresTransactions(pool, "compliance", PostgresAuditRepository)
        checkpointer = Checkpointer(key)
        for target in (ROWS_AT_FIRST_CHECKPOINT, ROWS):
            async with transactions.begin() as tx:
                while (head := await tx.repo.lock_head()) is None or head.seq < target:
                    await tx.repo.append(chain(head, entry(0 if head is None else head.seq + 1)))
                tx.before_commit(tx.repo.flush)
            await checkpointer.tick(transactions)
        async with pool.acquire() as conn:
            stored = await read_checkpoints(conn)
            outbox = await conn.fetch("SELECT topic, key, value, header_keys, header_values FROM outbox ORDER BY id")
    finally:
        await pool.close()
    assert [(c.tree_size, c.previous_size) for c in stored] == [(20, 0), (30, 20)]
    published = [decode(Record(r["topic"], r["key"], r["value"], list(zip(r["header_keys"], r["header_values"]))))
                 for r in outbox]
    assert all(isinstance(e, AuditCheckpointSigned) for e in published) and {r["topic"] for r in outbox} == {AUDIT.name}
    assert [from_event(e) for e in published] == stored  # what went to the topic is what was stored


async def tamper(url: str, *statements: str | tuple[str, tuple]) -> None:
    """Run SQL (or (SQL, arguments)) with the append-only triggers switched off, as only a superuser can."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for statement in statements:
                sql, args = (statement, ()) if isinstance(statement, str) else statement
                await conn.execute(sql, *args)
    finally:
        await conn.close()


async def verify(url: str, key_id: str, monkeypatch) -> tuple[int, str]:
    """`fedstream audit verify` on that database (in a thread: the command runs its own event loop)."""
    monkeypatch.setenv("FEDSTREAM_DATABASE_URL", url)
    args = ["audit", "verify", "--trust", key_id]
    out = await asyncio.to_thread(CliRunner().invoke, app, args, catch_exceptions=False)
    return out.exit_code, " ".join(out.output.split())


async def test_the_triggers_refuse_tampering_without_superuser_tricks(trail):
    url, _ = trail
    conn = await asyncpg.connect(url)
    try:
        for sql in ("UPDATE audit_trail SET source = 'x' WHERE seq = 3", "DELETE FROM audit_trail WHERE seq = 3",
                    "TRUNCATE audit_trail", "DELETE FROM audit_checkpoints", "UPDATE audit_checkpoints SET root_hash = root_hash"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(sql)
    finally:
        await conn.close()


async def test_an_untouched_trail_verifies(trail, monkeypatch):
    url, key_id = trail
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 0, output
    assert "audit trail intact: 30 rows" in output and "2 signed checkpoint(s) verified" in output


async def test_a_modified_row_is_detected(trail, monkeypatch):
    url, key_id = trail
    await tamper(url, "UPDATE audit_trail SET source = 'attacker' WHERE seq = 7")
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "broken at seq 7 (modified)" in output and "row 7 modified" in output, output


async def test_a_deleted_row_is_detected(trail, monkeypatch):
    url, key_id = trail
    await tamper(url, "DELETE FROM audit_trail WHERE seq = 7")
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "(deleted)" in output and "row(s) 7 deleted" in output, output


async def test_a_deleted_row_with_the_rest_renumbered_is_detected(trail, monkeypatch):
    url, key_id = trail
    await tamper(url, "DELETE FROM audit_trail WHERE seq = 7",
                 "UPDATE audit_trail SET seq = seq + 1000000 WHERE seq > 7",
                 "UPDATE audit_trail SET seq = seq - 1000001 WHERE seq > 1000000")
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "1 row(s) deleted before row 7" in output, output
    assert "truncated after row 29" in output  # and the newest checkpoint now covers more rows than exist


async def test_an_inserted_row_is_detected_even_with_valid_hashes(trail, monkeypatch):
    url, key_id = trail
    conn = await asyncpg.connect(url)
    try:
        prev = await conn.fetchval("SELECT row_hash FROM audit_trail WHERE seq = 6")
    finally:
        await conn.close()
    forged = entry(7)
    await tamper(
        url,
        "UPDATE audit_trail SET seq = seq + 1000000 WHERE seq >= 7",
        "UPDATE audit_trail SET seq = seq - 999999 WHERE seq > 1000000",
        (f"INSERT INTO audit_trail ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)",
         (7, forged.event_id, forged.event_type, forged.topic, forged.federation_id, forged.round, forged.source,
          forged.occurred_at, forged.payload_sha256, prev, row_hash(7, forged, prev))),
    )
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "(inserted)" in output and "row(s) 7 inserted" in output, output


async def test_reordered_rows_are_detected(trail, monkeypatch):
    url, key_id = trail
    await tamper(url, "UPDATE audit_trail SET seq = 1000007 WHERE seq = 7",
                 "UPDATE audit_trail SET seq = 7 WHERE seq = 8",
                 "UPDATE audit_trail SET seq = 8 WHERE seq = 1000007")
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "broken at seq 7 (reordered)" in output, output


async def test_a_truncated_tail_is_detected_although_what_remains_chains(trail, monkeypatch):
    url, key_id = trail
    await tamper(url, "DELETE FROM audit_trail WHERE seq > 25")
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "broken at seq" not in output, output  # the chain of what is left is intact
    assert "(truncated)" in output and "tail truncated after row 25" in output and "26..30" in output, output


async def test_a_rewrite_that_recomputes_every_hash_is_detected_by_the_checkpoints(trail, monkeypatch):
    url, key_id = trail
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(f"SELECT {COLUMNS} FROM audit_trail ORDER BY seq")
    finally:
        await conn.close()
    forged, updates = None, []
    for r in rows:
        e = AuditEntry(r["event_id"], r["event_type"], r["topic"], r["federation_id"], r["round"],
                       "attacker" if r["seq"] == 12 else r["source"], r["occurred_at"], r["payload_sha256"])
        forged = chain(forged, e)
        updates.append((forged.entry.source, forged.prev_hash, forged.row_hash, forged.seq))
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.executemany("UPDATE audit_trail SET source = $1, prev_hash = $2, row_hash = $3 WHERE seq = $4", updates)
    finally:
        await conn.close()
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "broken at seq" not in output, output  # a perfectly consistent chain...
    assert "(rewritten)" in output and "within 1..20" in output, output  # ...that its checkpoints refuse


async def test_a_deleted_checkpoint_and_a_checkpoint_signed_by_another_key_are_detected(trail, monkeypatch):
    url, key_id = trail
    await tamper(url, "DELETE FROM audit_checkpoints WHERE tree_size = 20")
    code, output = await verify(url, key_id, monkeypatch)
    assert code == 1 and "(missing)" in output, output
    code, output = await verify(url, "0" * 32, monkeypatch)  # an auditor who pinned a different key
    assert code == 1 and "(untrusted)" in output, output
