"""Validation counts only verified participant messages: evaluation reports and heartbeats pass the sender check
(signature, enrolled unrevoked key of the claimed participant, freshness, single use) before any handler sees
them — through the handler table the service runs, on in-memory stores."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from fedstream.messaging.consumer import Dispatcher
from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.observability import metrics
from fedstream.participant.identity import ParticipantKeys
from fedstream.security import signing
from fedstream.storage.blobs import InMemoryBlobStore
from services.validation.bootstrap import handler_table
from services.validation.fakes import InMemoryValidationStore
from services.validation.handlers import ValidationHandlers
from services.validation.monitor import HealthMonitor
from services.validation.senders import SenderCheck
from schemas import events as ev
from schemas.alerts import AlertKind, AlertRaised, AlertSeverity
from schemas.identity import ParticipantEnrolled, ParticipantKeyRevoked
from tests.unit.helpers import emitted, put_weights, weights
from tests.unit.test_validation_alerts import POLICY, spec

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


class Counter:
    def __init__(self) -> None:
        self.added: list[dict] = []

    def add(self, amount: int, labels: dict) -> None:
        self.added += [labels] * amount

    def reasons(self) -> list[str]:
        return [labels["reason"] for labels in self.added]


class Validation:
    def __init__(self) -> None:
        self.now, self.blobs, self.keys = T0, InMemoryBlobStore(), ParticipantKeys()
        self.store = InMemoryValidationStore()
        clock = lambda: self.now  # noqa: E731
        monitor = HealthMonitor(POLICY, clock=clock)
        self.senders = SenderCheck(clock=clock, freshness_s=300, on_refused=monitor.on_refused)
        validation = ValidationHandlers(self.blobs, clock=clock, on_verdict=monitor.on_verdict)
        self.dispatcher = Dispatcher(handler_table(self.senders, validation.table(), monitor.table()))
        self.txs = InMemoryTransactions(self.store, "validation")

    async def deliver(self, *events: ev.Event) -> None:
        for event in events:
            async with self.txs.begin() as tx:
                await self.dispatcher.dispatch(event, tx)  # through the inbox, as the consumer does

    def emitted(self, kind: type) -> list:
        return [e for e in emitted(self.txs.published) if isinstance(e, kind)]

    async def enrol(self, *participants: str) -> None:
        for p in participants:
            public = self.keys.public_key(p)
            await self.deliver(ParticipantEnrolled(source="registry", federation_id=f"org-{p}", participant_id=p,
                                                   organisation=f"org-{p}", key_id=signing.key_id_of(public), public_key=public))

    async def candidate(self) -> ev.BlobRef:
        await self.deliver(ev.FederationCreated(source="registry", federation_id="f", spec=spec(), params=(),
                                                initial_model=await put_weights(self.blobs, weights()), time=self.now))
        ref = await put_weights(self.blobs, weights(0.1))
        contributions = tuple(ev.Contribution(update_id=uuid4(), participant_id=p, num_examples=10, sha256=ref.sha256)
                              for p in "ab")
        await self.deliver(ev.RoundAggregated(source="aggregation", federation_id="f", round=1, aggregate=ref,
                                              contributions=contributions, closed_by="all_submitted", time=self.now))
        return ref

    def report(self, participant: str, ref: ev.BlobRef, auc: float = 0.8) -> ev.EvaluationReported:
        return ev.EvaluationReported(source=f"participant/{participant}", federation_id="f", participant_id=participant,
                                     round=1, candidate_sha256=ref.sha256, num_examples=10, loss=0.4, accuracy=0.7, auc=auc)

    def signed(self, event, at: datetime | None = None):
        return self.keys.sign(event, at or self.now)

    def counted(self) -> set[str]:
        return {p for (_, _, p) in self.store.reports}


@pytest.fixture
def refused(monkeypatch) -> Counter:
    counter = Counter()
    monkeypatch.setattr(metrics, "messages_refused", counter)
    return counter


@pytest.fixture
async def v() -> Validation:
    validation = Validation()
    await validation.enrol("a", "b", "mallory")
    return validation


async def test_genuine_reports_of_every_contributor_validate_the_candidate(v, refused):
    ref = await v.candidate()
    await v.deliver(v.signed(v.report("a", ref)), v.signed(v.report("b", ref)))
    [validated] = v.emitted(ev.ModelValidated)
    assert validated.metrics.evaluators == 2 and refused.added == []


async def test_a_forged_report_is_not_counted_and_cannot_reject_the_candidate(v, refused):
    ref = await v.candidate()
    mallory = v.keys.key("mallory")
    forged = signing.sign(v.report("b", ref, auc=0.01), "fedstream.evaluations", mallory, v.now)  # claims to be b
    unsigned = v.report("b", ref, auc=0.01)
    tampered = v.signed(v.report("b", ref, auc=0.9)).model_copy(update={"auc": 0.01})
    await v.deliver(v.signed(v.report("a", ref)), forged, unsigned, tampered)
    assert v.counted() == {"a"} and v.emitted(ev.ModelValidated) == [] and v.emitted(ev.ModelRejected) == []
    assert refused.reasons() == ["source_mismatch", "unsigned", "signature_invalid"]
    await v.deliver(v.signed(v.report("b", ref, auc=0.8)))  # b's own report still counts: nothing was used up
    [validated] = v.emitted(ev.ModelValidated)
    assert validated.metrics.auc == pytest.approx(0.8)


async def test_reports_signed_with_a_revoked_or_unknown_key_or_too_long_ago_do_not_count(v, refused):
    ref = await v.candidate()
    await v.deliver(ParticipantKeyRevoked(source="registry", federation_id="org-b", participant_id="b",
                                          key_id=signing.key_id_of(v.keys.public_key("b"))))
    stranger = ParticipantKeys()  # a key nobody enrolled
    await v.deliver(v.signed(v.report("b", ref)), stranger.sign(v.report("a", ref), v.now),
                    v.signed(v.report("a", ref), at=v.now - timedelta(minutes=6)))
    assert v.counted() == set()
    assert refused.reasons() == ["key_revoked", "unknown_key", "stale"]


async def test_a_replayed_report_is_refused_and_a_redelivered_one_changes_nothing(v, refused):
    ref = await v.candidate()
    genuine = v.signed(v.report("a", ref))
    await v.deliver(genuine, genuine)  # redelivered: the inbox drops it
    await v.deliver(genuine.model_copy(update={"event_id": uuid4()}))  # re-sent as a new message
    assert v.counted() == {"a"} and refused.reasons() == ["replayed"]


async def test_hostile_refused_reports_raise_a_security_breach_for_the_claimed_participant(v, refused):
    ref = await v.candidate()
    mallory = v.keys.key("mallory")
    for _ in range(3):
        await v.deliver(signing.sign(v.report("b", ref), "fedstream.evaluations", mallory, v.now))
    await v.deliver(v.report("a", ref))  # unsigned: a misconfigured client, not an attack
    [breach] = [a for a in v.emitted(AlertRaised) if a.kind is AlertKind.SECURITY_BREACH]
    assert (breach.severity, breach.subject, breach.value) == (AlertSeverity.CRITICAL, "b", 3)
    assert [p.reason for p in v.store.participant_points if p.kind == "refused"] == ["source_mismatch"] * 3 + ["unsigned"]


async def test_only_a_signed_heartbeat_makes_a_participant_join(v, refused):
    await v.candidate()

    def beat(participant: str) -> ev.ParticipantHeartbeat:
        return ev.ParticipantHeartbeat(source=f"participant/{participant}", federation_id="f", participant_id=participant,
                                       ttl_s=15, time=v.now)

    forged = [signing.sign(beat("b"), "fedstream.heartbeats", v.keys.key("mallory"), v.now) for _ in range(3)]
    await v.deliver(beat("a"), *forged)
    assert [a for a in v.emitted(AlertRaised) if a.kind is AlertKind.PARTICIPANT_JOINED] == []
    assert refused.reasons() == ["unsigned"] + ["source_mismatch"] * 3
    assert [a for a in v.emitted(AlertRaised) if a.kind is AlertKind.SECURITY_BREACH] == []  # liveness decides nothing
    await v.deliver(v.signed(beat("a")))
    joined = [a.subject for a in v.emitted(AlertRaised) if a.kind is AlertKind.PARTICIPANT_JOINED]
    assert joined == ["a"]


async def test_old_nonces_are_forgotten_once_their_messages_would_be_stale(v, refused):
    ref = await v.candidate()
    await v.deliver(v.signed(v.report("a", ref)))
    assert len(v.store.nonces) == 1
    v.now += timedelta(seconds=599)
    await v.senders.forget_old_nonces(v.txs)
    assert len(v.store.nonces) == 1
    v.now += timedelta(seconds=2)
    await v.senders.forget_old_nonces(v.txs)
    assert v.store.nonces == {}


async def test_a_batch_of_reports_is_verified_with_one_key_lookup_and_one_nonce_claim(v, refused):
    """The reports of a round arrive together and sit on the close → release path: two round trips, not two each."""
    from fedstream.messaging.codec import encode
    from fedstream.messaging.consumer import BatchProcessor

    ref = await v.candidate()
    calls = {"keys": 0, "use_nonces": 0}
    for name in calls:
        original = getattr(v.store, name)

        async def counted(arg, original=original, name=name):
            calls[name] += 1
            return await original(arg)

        setattr(v.store, name, counted)
    genuine = [v.signed(v.report(p, ref)) for p in "ab"]
    replay = genuine[0].model_copy(update={"event_id": uuid4()})  # the event id is not signed
    forged = signing.sign(v.report("a", ref), "fedstream.evaluations", v.keys.key("mallory"), v.now)
    processor = BatchProcessor(v.txs, v.dispatcher, prefetch=v.senders.prefetch)
    await processor.process([encode(e, "fedstream.evaluations") for e in [*genuine, replay, forged]])
    assert calls == {"keys": 1, "use_nonces": 1}
    assert v.counted() == {"a", "b"}
    assert sorted(refused.reasons()) == ["replayed", "source_mismatch"]
