"""The registry's identity decisions with an in-memory store."""

from datetime import UTC, datetime, timedelta

import pytest

from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.security.signing import generate_key, key_id_of, public_key_text
from services.registry.identity import IdentityHandlers, InMemoryIdentityStore
from schemas import identity as idn
from tests.unit.helpers import emitted

LATER = datetime(2027, 1, 1, tzinfo=UTC)


class Registry:
    def __init__(self) -> None:
        self.store = InMemoryIdentityStore()
        self.handlers = IdentityHandlers(lambda tx: self.store)
        self.txs = InMemoryTransactions(object())

    async def send(self, command) -> list:
        before = len(self.txs.published)
        async with self.txs.begin() as tx:
            await self.handlers.table()[type(command)](command, tx)
        return emitted(self.txs.published[before:])


def enrol(participant="a", organisation="org-a", key=None):
    public = public_key_text(key or generate_key())
    return idn.EnrolParticipant(source="operator", federation_id=organisation, participant_id=participant,
                                organisation=organisation, public_key=public, requested_by="admin")


@pytest.fixture
def registry():
    return Registry()


async def test_enrolment_publishes_the_key_under_the_organisation(registry):
    command = enrol()
    [fact] = await registry.send(command)
    assert isinstance(fact, idn.ParticipantEnrolled)
    assert (fact.participant_id, fact.organisation, fact.federation_id) == ("a", "org-a", "org-a")
    assert fact.key_id == key_id_of(command.public_key) and fact.public_key == command.public_key


async def test_enrolling_the_same_key_again_states_the_same_fact(registry):
    key = generate_key()
    [first] = await registry.send(enrol(key=key))
    [second] = await registry.send(enrol(key=key))
    assert first.event_id == second.event_id  # consumers' inboxes collapse it


async def test_a_second_key_is_a_rotation(registry):
    await registry.send(enrol())
    [fact] = await registry.send(enrol())
    assert isinstance(fact, idn.ParticipantEnrolled) and len(registry.store.keys) == 2


async def test_a_participant_cannot_move_to_another_organisation(registry):
    await registry.send(enrol())
    [refused] = await registry.send(enrol(organisation="org-b"))
    assert isinstance(refused, idn.IdentityRefused) and "org-a" in refused.reason


async def test_a_key_cannot_be_taken_by_another_participant(registry):
    key = generate_key()
    await registry.send(enrol("a", key=key))
    [refused] = await registry.send(enrol("b", "org-a", key=key))
    assert isinstance(refused, idn.IdentityRefused)


async def test_revocation_is_final(registry):
    key = generate_key()
    await registry.send(enrol(key=key))
    key_id = key_id_of(public_key_text(key))
    revoke = idn.RevokeParticipantKey(source="operator", federation_id="org-a", participant_id="a", key_id=key_id,
                                      reason="stolen", requested_by="admin")
    [fact] = await registry.send(revoke)
    assert isinstance(fact, idn.ParticipantKeyRevoked) and fact.key_id == key_id and fact.federation_id == "org-a"
    [refused] = await registry.send(enrol(key=key))
    assert isinstance(refused, idn.IdentityRefused) and "revoked" in refused.reason


async def test_only_the_owner_of_a_key_can_have_it_revoked(registry):
    key = generate_key()
    await registry.send(enrol("a", key=key))
    revoke = idn.RevokeParticipantKey(source="operator", federation_id="org-b", participant_id="b",
                                      key_id=key_id_of(public_key_text(key)), requested_by="admin")
    [refused] = await registry.send(revoke)
    assert isinstance(refused, idn.IdentityRefused)


async def test_consent_needs_an_enrolled_participant(registry):
    consent = idn.RecordConsent(source="operator", federation_id="org-a", participant_id="a", expires_at=LATER,
                                requested_by="dpo")
    [refused] = await registry.send(consent)
    assert isinstance(refused, idn.IdentityRefused)
    await registry.send(enrol())
    [fact] = await registry.send(consent)
    assert isinstance(fact, idn.ConsentRecorded) and fact.scope == "*" and fact.expires_at == LATER


async def test_a_baa_is_recorded_for_its_organisation(registry):
    [fact] = await registry.send(idn.RegisterBaa(source="operator", federation_id="org-a", organisation="org-a",
                                                 reference="BAA-2026-17", expires_at=LATER + timedelta(days=1), requested_by="dpo"))
    assert isinstance(fact, idn.BaaRegistered) and fact.active and fact.reference == "BAA-2026-17"
