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
from schemas.compliance import ERASURE_SCOPE, EraseParticipant, ErasureCertified, ParticipantErased
from schemas.topics import COMMANDS, HEARTBEATS
from services.compliance.erasure import ErasureServices, audit_source, erase, id_pattern, replace_id, rewrite_json
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
    outcome = await erase(command(), keys, store, NoCoordination(), NOW)
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
