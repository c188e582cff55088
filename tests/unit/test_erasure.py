"""Erasure: finding an id exactly, rewriting it everywhere, the certificate, and the audit trail's pseudonyms."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from fedstream.messaging.codec import encode
from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.security.keys import InMemoryKeyManager, KeyDestroyed
from schemas import events as ev
from schemas.compliance import (
    BROKER_RETENTION_CHECK_MS,
    ERASURE_DEADLINE_DAYS,
    ERASURE_SCOPE,
    EraseParticipant,
    ErasureCertified,
    ParticipantErased,
)
from schemas.topics import ALL_TOPICS, AUDIT, COMMANDS, DEAD_LETTER, HEARTBEATS, SUBMISSIONS
from services.compliance.erasure import (
    DeclaredRetention,
    ErasureServices,
    TopicRetention,
    audit_source,
    erase,
    id_pattern,
    kafka_copies,
    replace_id,
    rewrite_json,
    topics_naming_participants,
)
from services.compliance.erasure_fakes import InMemoryErasureStore, NoCoordination
from services.compliance.fakes import InMemoryAuditRepository
from services.compliance.handlers import ComplianceHandlers

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text, found",
    [
        ("site-1", True), ("participant/site-1", True), ('{"participant_id": "site-1"}', True),
        ("{site-0,site-1}", True), ("update of site-1.", True),
        ("site-10", False), ("site-1-b", False), ("xsite-1", False), ("site-1.eu", False), ("a.site-1", False),
    ],
)
def test_the_id_is_found_only_as_a_whole_identifier(text, found):
    assert bool(re.search(id_pattern("site-1"), text)) is found


def test_replacing_leaves_other_participants_alone():
    assert replace_id("site-1 and site-10", "site-1", "pn-x") == "pn-x and site-10"


def test_a_spec_loses_the_participant_and_its_organisation_but_nobody_else():
    spec = {"participants": [
        {"participant_id": "site-1", "organisation": "clinic-a", "kind": "hospital"},
        {"participant_id": "site-2", "organisation": "clinic-a", "kind": "hospital"},
    ], "quorum": 2}
    out = rewrite_json(spec, "site-1", "pn-x")
    assert out["participants"][0] == {"participant_id": "pn-x", "organisation": "erased", "kind": "hospital"}
    assert out["participants"][1] == spec["participants"][1] and out["quorum"] == 2


def test_the_audit_source_of_a_participant_is_its_pseudonym():
    keys = InMemoryKeyManager()
    assert audit_source("participant/site-1", keys.pseudonym) == f"participant/{keys.pseudonym('site-1')}"
    assert audit_source("registry", keys.pseudonym) == "registry"
    keys.destroy("site-1")
    assert audit_source("participant/site-1", keys.pseudonym) == "participant/erased"


def tables() -> dict[str, list[dict]]:
    return {
        "participants": [
            {"federation_id": "f1", "participant_id": "site-1", "organisation": "clinic-a"},
            {"federation_id": "f2", "participant_id": "site-1", "organisation": "clinic-a"},
            {"federation_id": "f1", "participant_id": "site-10", "organisation": "clinic-b"},
        ],
        "aggregation_contributions": [
            {"federation_id": "f1", "round": 1, "participant_id": "site-1"},
            {"federation_id": "f1", "round": 1, "participant_id": "site-10"},
        ],
        "participant_enrolments": [{"participant_id": "site-1", "organisation": "clinic-a"}],
        "privacy_ledger": [{"participant_id": "site-1", "epsilon": 0.3}],
        "audit_trail": [{"source": "participant/pn-already"}],
    }


def command() -> EraseParticipant:
    return EraseParticipant(source="operator", federation_id=ERASURE_SCOPE, participant_id="site-1", requested_by="dpo")


async def test_an_erasure_rewrites_every_table_and_certifies_what_it_did():
    keys, store = InMemoryKeyManager(), InMemoryErasureStore(tables())
    pseudonym = keys.pseudonym("site-1")
    outcome = await erase(command(), keys, store, NoCoordination(), DeclaredRetention(), NOW)
    cert = outcome.certificate
    assert cert.pseudonym == pseudonym and cert.federations == ("f1", "f2") and cert.residual == ()
    assert [(e.federation_id, e.round) for e in cert.lineage] == [("f1", 1)]
    assert {e.table: e.changes for e in cert.erased} == {  # participants: id and organisation, in two rows
        "participants": 4, "aggregation_contributions": 1, "participant_enrolments": 1, "privacy_ledger": 1,
    }
    assert cert.shredded_key_ids == keys.key_ids("site-1")
    assert [f.federation_id for f in outcome.facts] == ["f1", "f2"]
    dumped = json.dumps(store.tables) + cert.model_dump_json() + "".join(f.model_dump_json() for f in outcome.facts)
    assert not re.search(id_pattern("site-1"), dumped)
    assert "site-10" in dumped and "clinic-b" in dumped
    assert store.tables["participant_enrolments"] == []


async def test_the_handler_shreds_the_key_only_after_commit_and_a_repeat_changes_nothing():
    keys = InMemoryKeyManager()
    wrapped = keys.wrap("site-1", b"k" * 32)
    store = InMemoryErasureStore(tables())
    handlers = ComplianceHandlers(ErasureServices(keys, lambda repo: store, NoCoordination(), lambda: NOW))
    repo = InMemoryAuditRepository()
    txs = InMemoryTransactions(repo)
    handle = handlers.table()[EraseParticipant]

    async def deliver(event, topic):
        async with txs.begin() as tx:
            tx.record = encode(event, topic)
            await handle(event, tx) if isinstance(event, EraseParticipant) else await handlers.on_any_event(event, tx)

    beat = ev.ParticipantHeartbeat(source="participant/site-1", federation_id="f1", participant_id="site-1", ttl_s=5)
    await deliver(beat, HEARTBEATS.name)
    await deliver(command(), COMMANDS.name)
    with pytest.raises(KeyDestroyed):
        keys.unwrap(wrapped)
    kinds = [type(e) for e in handlers_events(txs)]
    assert kinds.count(ParticipantErased) == 2 and kinds.count(ErasureCertified) == 1
    assert all("site-1" not in r.entry.source for r in repo.rows)
    assert repo.rows[0].entry.source.startswith("participant/pn-")
    await deliver(EraseParticipant(source="operator", federation_id=ERASURE_SCOPE, participant_id="site-1", requested_by="dpo"), COMMANDS.name)
    assert len(store.certificates) == 1  # already erased: nothing left to do, no second certificate


def handlers_events(txs: InMemoryTransactions) -> list:
    from fedstream.messaging.codec import decode

    return [decode(r) for r in txs.published]


# --- crash-safe shredding ------------------------------------------------------------------------------


class CrashingKeyManager(InMemoryKeyManager):
    """Destroying fails until ``crashing`` is cleared: the process died between commit and destruction."""

    crashing = True

    def destroy(self, owner: str) -> tuple[str, ...]:
        if self.crashing:
            raise ConnectionError("the key manager went away")
        return super().destroy(owner)


async def sealed_blob(keys, owner: str):  # noqa: ANN001, ANN201 - test helper
    from fedstream.storage.blobs import InMemoryBlobStore
    from fedstream.storage.envelope import EnvelopeBlobStore

    blobs = EnvelopeBlobStore(InMemoryBlobStore(), keys)
    return blobs, await blobs.put(b"an update of " + owner.encode(), owner=owner)


async def test_a_crash_between_commit_and_key_destruction_is_finished_by_the_shredding_timer():
    from fedstream.storage.envelope import BlobShredded

    keys, store = CrashingKeyManager(), InMemoryErasureStore(tables())
    blobs, ref = await sealed_blob(keys, "site-1")
    services = ErasureServices(keys, lambda repo: store, NoCoordination(), lambda: NOW)
    txs = InMemoryTransactions(InMemoryAuditRepository())
    async with txs.begin() as tx:
        tx.record = encode(command(), COMMANDS.name)
        await ComplianceHandlers(services).on_erase(command(), tx)

    # Committed, key still alive: the blob still opens, and the erasure says the key is due.
    pseudonym = store.certificates[0].pseudonym
    assert await blobs.get(ref) == b"an update of site-1"
    assert store.pending == {pseudonym: "site-1"} and store.keys_destroyed_at == {}

    keys.crashing = False  # the service restarts: its timer runs at start
    later = NOW.replace(minute=1)
    restarted = ComplianceHandlers(ErasureServices(keys, lambda repo: store, NoCoordination(), lambda: later))
    await restarted.shred_pending(txs)
    with pytest.raises(BlobShredded):
        await blobs.get(ref)
    assert store.pending == {} and store.keys_destroyed_at == {pseudonym: later}
    await restarted.shred_pending(txs)  # nothing left: a second tick changes nothing
    assert store.keys_destroyed_at == {pseudonym: later}


async def test_when_the_key_went_right_after_commit_the_timer_only_records_it():
    keys, store = InMemoryKeyManager(), InMemoryErasureStore(tables())
    handlers = ComplianceHandlers(ErasureServices(keys, lambda repo: store, NoCoordination(), lambda: NOW))
    txs = InMemoryTransactions(InMemoryAuditRepository())
    async with txs.begin() as tx:
        tx.record = encode(command(), COMMANDS.name)
        await handlers.on_erase(command(), tx)
    assert keys.owners["site-1"] is None  # destroyed after commit, as before
    pseudonym = store.certificates[0].pseudonym
    assert list(store.pending) == [pseudonym]  # but not yet recorded as done
    await handlers.shred_pending(txs)  # destroying again is harmless
    assert store.pending == {} and store.keys_destroyed_at == {pseudonym: NOW}


async def test_a_rolled_back_erasure_leaves_the_key_alone():
    keys, store = InMemoryKeyManager(), InMemoryErasureStore(tables())
    keys.pseudonym("site-1")
    handlers = ComplianceHandlers(ErasureServices(keys, lambda repo: store, NoCoordination(), lambda: NOW))
    txs = InMemoryTransactions(InMemoryAuditRepository())
    with pytest.raises(RuntimeError):
        async with txs.begin() as tx:
            tx.record = encode(command(), COMMANDS.name)
            await handlers.on_erase(command(), tx)
            raise RuntimeError("the transaction fails after the erasure's statements")
    assert keys.key_ids("site-1")  # no after-commit destruction ran


# --- Kafka's copies ----------------------------------------------------------------------------------

DEADLINE = ERASURE_DEADLINE_DAYS * 86_400_000


async def test_the_certificate_says_when_each_participant_topics_copies_are_gone():
    keys, store = InMemoryKeyManager(), InMemoryErasureStore(tables())
    cert = (await erase(command(), keys, store, NoCoordination(), DeclaredRetention(), NOW)).certificate
    assert {c.topic for c in cert.kafka_copies} == {t.name for t in ALL_TOPICS if t is not AUDIT}
    for copy in cert.kafka_copies:
        assert copy.source == "declared" and copy.expires_by is not None
        assert (copy.expires_by - NOW).total_seconds() * 1000 <= DEADLINE + BROKER_RETENTION_CHECK_MS, copy.topic


def test_copies_expire_after_segment_roll_and_retention_and_never_without_either():
    day = 86_400_000
    copies = kafka_copies(TopicRetention("t", retention_ms=29 * day, segment_ms=day, source="broker"), NOW)
    assert (copies.expires_by - NOW).total_seconds() * 1000 == 30 * day + BROKER_RETENTION_CHECK_MS
    assert copies.source == "broker"
    assert kafka_copies(TopicRetention("t", retention_ms=-1, segment_ms=day), NOW).expires_by is None
    assert kafka_copies(TopicRetention("t", retention_ms=day, segment_ms=day, compacted=True), NOW).expires_by is None


def _field_names(model: type, seen: tuple = ()) -> set[str]:
    """Every field name of a pydantic model, nested models included."""
    import typing

    from pydantic import BaseModel

    names = set()
    for name, f in model.model_fields.items():
        names.add(name)
        for arg in (f.annotation, *typing.get_args(f.annotation)):
            for inner in typing.get_args(arg) or (arg,):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                    names |= _field_names(inner, (*seen, inner))
    return names


NAMING_FIELDS = {"participant_id", "participant_ids", "participants", "organisation", "subject"}


def test_the_audit_topic_which_keeps_everything_for_ever_carries_pseudonyms_only():
    assert dict(AUDIT.config)["retention.ms"] == "-1"
    for message in AUDIT.messages:
        assert not _field_names(message) & NAMING_FIELDS, message.__name__
    assert "participant_id" in _field_names(SUBMISSIONS.messages[0])  # the scan does find them where they are


def test_every_topic_naming_participants_is_bounded_by_the_erasure_deadline():
    naming = {t for t in ALL_TOPICS if any(_field_names(m) & NAMING_FIELDS for m in t.messages)} | {DEAD_LETTER}
    assert naming <= set(topics_naming_participants())
    for topic in topics_naming_participants():
        config = dict(topic.config)
        assert int(config["retention.ms"]) + int(config["segment.ms"]) <= DEADLINE, topic.name


def test_the_brokers_answer_is_read_per_topic():
    from services.compliance.erasure_adapters import _parse_resource

    entries = [("retention.ms", "1000", False, 5, False, []), ("segment.ms", "60000", False, 5, False, []),
               ("cleanup.policy", "delete", False, 5, False, [])]
    assert _parse_resource((0, None, 2, "fedstream.rounds", entries)) == TopicRetention(
        "fedstream.rounds", 1000, 60000, compacted=False, source="broker")
    assert _parse_resource((3, "unknown topic", 2, "nope", [])) is None
    assert _parse_resource((0, None, 2, "t", entries[:1])) is None  # half an answer: fall back to the declared one
