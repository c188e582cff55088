"""GDPR on the real stack: export a participant, erase it, and find its identifiers nowhere afterwards —
not in PostgreSQL (every table of every schema, dumped as text), Redis (every key and value), the blob
store or exports; its key destroyed even when the process dies between the erasure's commit and the
destruction. Kafka is not searched: topics keep the original events until retention expires them, and the
certificate says when that is.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlparse
from uuid import uuid4

import asyncpg
import pytest
import redis.asyncio as aioredis

from fedstream.cli.gdpr_cmd import export_bundle, request_erasure, wait_for_certificate, wait_for_shredding
from fedstream.participant.simulation import simulate
from fedstream.storage import tensors
from fedstream.storage.envelope import BlobShredded, blob_store_for, is_sealed
from schemas import events as ev
from schemas.compliance import BROKER_RETENTION_CHECK_MS, ERASURE_DEADLINE_DAYS, ERASURE_SCOPE, ErasureCertified, ParticipantErased
from schemas.federation import ParticipantSpec, parse_spec
from schemas.topics import AUDIT, SUBMISSIONS
from services.compliance.verify import verify_database
from tests.integration.conftest import SPEC_FILE
from tests.integration.harness import TopicLog

pytestmark = pytest.mark.integration

# Every table of every user schema as JSON text: what a dump would show, bytea as hex.
DUMP = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
"""


@pytest.fixture(scope="module")
def erased_federation(stack):
    """A two-round federation whose first participant has identifiers found nowhere else in the session."""
    tag = uuid4().hex[:8]
    spec = parse_spec(SPEC_FILE.read_text())
    first = ParticipantSpec(participant_id=f"erasable-{tag}", organisation=f"org-{tag}", kind="hospital")
    spec = spec.model_copy(update={
        "federation_id": f"gdpr-{tag}",
        "participants": (first, *spec.participants[1:]),
        "training": spec.training.model_copy(update={"rounds": 2}),
    })
    result = asyncio.run(simulate(stack.endpoints, spec, timeout_s=240))
    assert result.progress.completed is not None
    return spec, first


async def test_update_blobs_are_encrypted_at_rest(stack, erased_federation):
    spec, who = erased_federation
    async with TopicLog(stack.endpoints, spec.federation_id, (SUBMISSIONS,)) as log:
        await log.wait_for(lambda lg: len(lg.events(ev.UpdateSubmitted)) >= 2 * len(spec.participants))
        refs = [e.update for e in log.events(ev.UpdateSubmitted)]
    assert all(is_sealed(r) for r in refs)
    weights = tensors.from_bytes(await blob_store_for(stack.endpoints).get(refs[0]))
    for ref in refs:
        stored = Path(urlparse(ref.uri.partition("#")[0]).path).read_bytes()
        assert stored.startswith(b"FSE1")
        assert all(name.encode() not in stored for name in weights)  # a safetensors header names every tensor


async def test_export_then_erasure_leaves_the_participant_nowhere(stack, erased_federation):
    spec, who = erased_federation
    pid, org = who.participant_id, who.organisation
    endpoints = stack.endpoints
    async with TopicLog(endpoints, spec.federation_id, (SUBMISSIONS,)) as log:
        await log.read_to_end()
        own = [e for e in log.events(ev.UpdateSubmitted) if e.participant_id == pid]
        others = [e for e in log.events(ev.UpdateSubmitted) if e.participant_id != pid]

    # Data portability: its rounds, ledger, admissions and enrolment.
    bundle = await export_bundle(endpoints, pid)
    tables = bundle["tables"]
    assert sorted(r["round"] for r in tables["updates"]) == [1, 2]
    assert len(tables["privacy_ledger"]) == 2 and len(tables["ingestion_admissions"]) == 2
    enrolment = tables.get("participant_enrolments") or tables["participants"]
    assert enrolment[0]["organisation"] == org
    assert bundle["summary"]["rounds"] == [(spec.federation_id, 1), (spec.federation_id, 2)]

    # Erasure, and its certificate.
    request_id = await request_erasure(endpoints, pid, reason="test", requested_by="dpo")
    certificate = await wait_for_certificate(endpoints, request_id, timeout_s=90)
    assert certificate["federations"] == [spec.federation_id] and certificate["residual"] == []
    assert [(e["round"], e["model_version"]) for e in certificate["lineage"]] == [(1, 1), (2, 2)]
    assert certificate["shredded_key_ids"] and certificate["pseudonym"].startswith("pn-")
    pseudonym = certificate["pseudonym"]
    _assert_kafka_copies_bounded(certificate)
    status = await wait_for_shredding(endpoints, request_id, timeout_s=60)  # recorded by compliance's timer
    assert status["shredding"] == "complete" and status["keys_destroyed_at"] >= certificate["erased_at"]
    async with TopicLog(endpoints, ERASURE_SCOPE, (AUDIT,)) as log:
        await log.wait_for(lambda lg: any(e.request_id == request_id for e in lg.events(ErasureCertified)))
    async with TopicLog(endpoints, spec.federation_id, (AUDIT,)) as log:
        await log.wait_for(lambda lg: any(e.pseudonym == pseudonym for e in lg.events(ParticipantErased)))

    # Crypto-shredded: its blobs are gone for good, nobody else's are.
    blobs = blob_store_for(endpoints)
    await _eventually(lambda: _shredded(blobs, own[0].update))
    for e in own:
        with pytest.raises(BlobShredded):
            await blobs.get(e.update)
    for e in others:
        assert tensors.from_bytes(await blobs.get(e.update))

    # Excluded from later rounds, and the audit chain still verifies.
    conn = await asyncpg.connect(endpoints.database_url)
    try:
        await _eventually(lambda: _excluded(conn, spec.federation_id, pseudonym))
        spec_now = await conn.fetchval("SELECT spec::text FROM registry_state WHERE federation_id = $1", spec.federation_id)
        assert pseudonym in spec_now and pid not in spec_now  # the pseudonym stands in its place, excluded
        audited = await conn.fetchval("SELECT count(*) FROM audit_trail WHERE source = $1", f"participant/{pseudonym}")
        assert audited >= 2  # its events are still accounted for, under a pseudonym nobody can link back now
    finally:
        await conn.close()
    assert (await verify_database(endpoints.database_url)).broken is None

    # Its identifiers, nowhere.
    # The organisation is the tenant's identifier, not the participant's: the tenant's own records (its BAA,
    # kept 6 years under HIPAA, and the audit rows of its identity events, keyed by organisation) remain.
    for where, dump in (("postgres", await _postgres_dump(endpoints.database_url)),
                        ("redis", await _redis_dump(endpoints.redis_url)), ("blobs", _blob_bytes(stack))):
        hits = _found(dump, (pid,)) + [h for h in _found(dump, (org,)) if not _organisation_record(h, org)]
        assert not hits, f"{where} still names the participant:\n" + "\n".join(h[:300] for h in hits)
    after = await export_bundle(endpoints, pid)
    assert after["tables"] == {}
    someone_else = await export_bundle(endpoints, spec.participants[1].participant_id)
    assert someone_else["tables"] and _found(json.dumps(someone_else, default=str).encode(), (pid, org)) == []


def _organisation_record(line: str, org: str) -> bool:
    if line.startswith(("public.baa_registry ", "public.ingestion_baas ")):
        return True
    row = json.loads(line.split(" ", 1)[1]) if line.startswith("public.audit_trail ") else None
    return row is not None and row["federation_id"] == org and org not in json.dumps({**row, "federation_id": ""})


def _found(haystack: bytes, needles: tuple[str, ...]) -> list[str]:
    """Lines (of a dump: one row, key or file per line) holding a needle, in plaintext or hex."""
    forms = [f for n in needles for f in (n.encode(), n.encode().hex().encode())]
    return [line.decode(errors="replace") for line in haystack.split(b"\n") if any(f in line for f in forms)]


async def _postgres_dump(database_url: str) -> bytes:
    conn = await asyncpg.connect(database_url)
    try:
        out = []
        for schema, table in await conn.fetch(DUMP):
            rows = await conn.fetch(f'SELECT to_jsonb(x)::text FROM "{schema}"."{table}" AS x')  # noqa: S608
            out += [f"{schema}.{table} {r[0]}" for r in rows]
        return "\n".join(out).encode()
    finally:
        await conn.close()


async def _redis_dump(redis_url: str) -> bytes:
    client = aioredis.from_url(redis_url)
    try:
        out: list[bytes] = []
        async for key in client.scan_iter(count=500):
            out.append(key)
            kind = (await client.type(key)).decode()
            if kind == "string":
                out.append(await client.get(key) or b"")
            elif kind == "zset":
                out += await client.zrange(key, 0, -1)
            elif kind == "set":
                out += list(await client.smembers(key))
            elif kind == "hash":
                out += [b for kv in (await client.hgetall(key)).items() for b in kv]
            elif kind == "list":
                out += await client.lrange(key, 0, -1)
        return b"\n".join(out)
    finally:
        await client.aclose()


def _blob_bytes(stack) -> bytes:
    root = Path(urlparse(stack.endpoints.blob_store_url).path)
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


async def _shredded(blobs, ref) -> bool:
    try:
        await blobs.get(ref)
    except BlobShredded:
        return True
    return False


async def _excluded(conn, federation_id: str, pseudonym: str) -> bool:
    excluded = await conn.fetchval("SELECT excluded FROM registry_state WHERE federation_id = $1", federation_id)
    return pseudonym in excluded


async def _eventually(condition, timeout_s: float = 30.0) -> None:
    """Key destruction follows the erasure's commit; the registry's exclusion follows its event."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{condition} not met within {timeout_s}s")
        await asyncio.sleep(0.2)


def _assert_kafka_copies_bounded(certificate: dict) -> None:
    """Every topic but the audit topic, as the broker reports it, gone by the erasure deadline."""
    from datetime import datetime, timedelta

    from schemas.topics import ALL_TOPICS

    copies = {c["topic"]: c for c in certificate["kafka_copies"]}
    assert set(copies) == {t.name for t in ALL_TOPICS if t is not AUDIT}
    erased_at = datetime.fromisoformat(certificate["erased_at"])
    bound = erased_at + timedelta(days=ERASURE_DEADLINE_DAYS, milliseconds=BROKER_RETENTION_CHECK_MS)
    for topic, copy in copies.items():
        assert copy["source"] == "broker", topic
        assert copy["expires_by"] is not None and datetime.fromisoformat(copy["expires_by"]) <= bound, topic


# --- a crash between the erasure's commit and the key's destruction --------------------------------------


class CrashingKeyring:
    """The stack's real key manager kind (a local keyring), whose destruction fails while ``crashing``: the
    process died right after the erasure committed."""

    def __init__(self, directory: Path) -> None:
        import os

        from fedstream.security.keys import LocalKeyring

        self.inner, self.crashing = LocalKeyring(directory, os.urandom(32)), True

    def __getattr__(self, name):  # noqa: ANN001, ANN204 - the rest of the KeyManager port, unchanged
        return getattr(self.inner, name)

    def destroy(self, owner: str) -> tuple[str, ...]:
        if self.crashing:
            raise ConnectionError("the process died")
        return self.inner.destroy(owner)


@pytest.fixture
async def own_database(infra):
    """A database of its own (same server, every migration): the stack's compliance service, whose timer
    would finish the shredding first, never sees it."""
    from urllib.parse import urlsplit, urlunsplit

    from fedstream.storage.postgres import apply_migrations

    name = f"erasure_crash_{uuid4().hex[:8]}"
    parts = urlsplit(infra.endpoints.database_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin = await asyncpg.connect(infra.endpoints.database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await apply_migrations(url)
        yield infra.endpoints.model_copy(update={"database_url": url})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_crash_before_the_key_is_destroyed_is_finished_by_the_compliance_timer(own_database, tmp_path):
    from fedstream.cli.gdpr_cmd import erasure_status
    from fedstream.messaging.codec import encode
    from fedstream.messaging.transaction import PostgresTransactions
    from fedstream.storage.blobs import FileBlobStore
    from fedstream.storage.envelope import EnvelopeBlobStore
    from fedstream.storage.postgres import create_pool
    from schemas.base import utcnow
    from schemas.compliance import EraseParticipant
    from schemas.topics import COMMANDS
    from services.compliance.adapters import PostgresAuditRepository
    from services.compliance.erasure import ErasureServices
    from services.compliance.erasure_adapters import KafkaRetentionReader, PostgresErasureStore
    from services.compliance.erasure_fakes import NoCoordination
    from services.compliance.export import export_participant
    from services.compliance.handlers import ComplianceHandlers
    from tests.tenancy_helpers import enrol

    endpoints, pid = own_database, f"crash-{uuid4().hex[:8]}"
    keys = CrashingKeyring(tmp_path / "keyring")
    blobs = EnvelopeBlobStore(FileBlobStore(tmp_path / "blobs"), keys)
    ref = await blobs.put(b"an update", owner=pid)
    pool = await create_pool(endpoints.database_url)
    try:
        async with pool.acquire() as conn:
            await enrol(conn, pid, "org-crash")

        def services() -> ErasureServices:
            return ErasureServices(keys, lambda repo: PostgresErasureStore(repo.conn), NoCoordination(), utcnow,
                                   KafkaRetentionReader(endpoints))

        transactions = PostgresTransactions(pool, "compliance", PostgresAuditRepository)
        command = EraseParticipant(source="operator", federation_id=ERASURE_SCOPE, participant_id=pid, requested_by="dpo")
        async with transactions.begin() as tx:
            tx.record = encode(command, COMMANDS.name)
            await ComplianceHandlers(services()).on_erase(command, tx)

        # Committed, but the key survived: its blob still opens, and the database says the key is due.
        assert await blobs.get(ref) == b"an update"
        status = await erasure_status(endpoints, command.event_id)
        assert status["shredding"] == "pending" and status["keys_destroyed_at"] is None
        _assert_kafka_copies_bounded(status["certificate"])  # read from the real broker
        async with pool.acquire() as conn:
            assert (await export_participant(conn, pid))["erasure"]["shredding"] == "pending"

        # Restarted: the compliance service's shredding timer (it also ticks at start) finishes the job.
        keys.crashing = False
        await ComplianceHandlers(services()).shred_pending(transactions)
        with pytest.raises(BlobShredded):
            await blobs.get(ref)
        status = await erasure_status(endpoints, command.event_id)
        assert status["shredding"] == "complete" and status["keys_destroyed_at"] is not None
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM erasure_pending_keys") == 0
            bundle = await export_participant(conn, pid)
        assert bundle["erasure"] is None and bundle["tables"] == {}  # nothing names it any more
        assert _found(await _postgres_dump(endpoints.database_url), (pid,)) == []
    finally:
        await pool.close()
