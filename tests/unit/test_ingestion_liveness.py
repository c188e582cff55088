"""Ingestion's liveness handler: only a participant's own, fresh, first-time heartbeat makes it live."""

import logging
from datetime import timedelta
from uuid import uuid4

import pytest

from fedstream.observability import metrics
from fedstream.participant.identity import ParticipantKeys
from fedstream.security import signing
from services.ingestion.liveness import Liveness
from schemas import events as ev
from schemas.identity import ParticipantKeyRevoked
from tests.unit.test_ingestion_admission import Harness


class Counter:
    def __init__(self) -> None:
        self.added: list[dict] = []

    def add(self, amount: int, labels: dict) -> None:
        self.added += [labels] * amount


@pytest.fixture
def refused(monkeypatch) -> Counter:
    counter = Counter()
    monkeypatch.setattr(metrics, "messages_refused", counter)
    return counter


@pytest.fixture
async def h():
    harness = Harness()
    await harness.start()  # a, b, c and mallory enrolled; federation f (a, b, c) created
    harness.liveness = Liveness(harness.coordination, lambda federation_id, tx: tx.repo.federation(federation_id),
                                clock=lambda: harness.now)
    return harness


def beat(participant="a", federation="f", ttl_s=15.0) -> ev.ParticipantHeartbeat:
    return ev.ParticipantHeartbeat(source=f"participant/{participant}", federation_id=federation, participant_id=participant,
                                   ttl_s=ttl_s)


async def deliver(h, event) -> None:
    async with h.txs.begin() as tx:
        if await tx.first_delivery(event.event_id):
            await h.liveness.on_heartbeat(event, tx)


async def live(h) -> set[str]:
    return await h.coordination.live_participants("f")


async def test_a_participants_signed_heartbeat_makes_it_live(h, refused):
    await deliver(h, h.keys.sign(beat("a"), h.now))
    assert await live(h) == {"a"} and refused.added == []


async def test_an_unsigned_heartbeat_is_refused_counted_and_logged(h, refused, caplog):
    with caplog.at_level(logging.WARNING, logger="services.ingestion.liveness"):
        await deliver(h, beat("a"))
    assert await live(h) == set()
    assert refused.added == [{"service": "ingestion", "type": ev.ParticipantHeartbeat.TYPE, "reason": "unsigned"}]
    assert "unsigned" in caplog.text and "'a'" in caplog.text


async def test_a_heartbeat_signed_with_another_participants_key_does_not_make_the_claimed_one_live(h, refused):
    mallory = h.keys.key("mallory")
    forged = signing.sign(beat("a"), "fedstream.heartbeats", mallory, h.now)
    await deliver(h, forged)
    assert await live(h) == set() and [r["reason"] for r in refused.added] == ["source_mismatch"]


async def test_a_key_never_enrolled_or_revoked_keeps_the_participant_silent(h, refused):
    await deliver(h, ParticipantKeys().sign(beat("a"), h.now))  # a fresh key nobody enrolled
    async with h.txs.begin() as tx:
        await h.handlers.table()[ParticipantKeyRevoked](ParticipantKeyRevoked(
            source="registry", federation_id="org-b", participant_id="b", key_id=signing.key_id_of(h.keys.public_key("b"))), tx)
    await deliver(h, h.keys.sign(beat("b"), h.now))
    assert await live(h) == set() and [r["reason"] for r in refused.added] == ["unknown_key", "key_revoked"]


async def test_a_replayed_heartbeat_does_not_bring_a_departed_participant_back(h, refused):
    genuine = h.keys.sign(beat("a", ttl_s=5), h.now)
    await deliver(h, genuine)
    h.now += timedelta(seconds=10)  # a's liveness expired; still within the signature's freshness window
    assert await live(h) == set()
    await deliver(h, genuine.model_copy(update={"event_id": uuid4()}))  # the same signed beat, re-sent as new
    assert await live(h) == set() and [r["reason"] for r in refused.added] == ["replayed"]
    await deliver(h, h.keys.sign(beat("a", ttl_s=5), h.now))  # a fresh beat of a's own does
    assert await live(h) == {"a"}


async def test_a_stale_heartbeat_is_refused(h, refused):
    await deliver(h, h.keys.sign(beat("a"), h.now - timedelta(minutes=10)))
    assert await live(h) == set() and [r["reason"] for r in refused.added] == ["stale"]


async def test_a_genuine_heartbeat_for_an_unknown_federation_records_nothing(h, refused):
    await deliver(h, h.keys.sign(beat("a", federation="elsewhere"), h.now))
    assert await h.coordination.live_participants("elsewhere") == set() and refused.added == []
