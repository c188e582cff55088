"""Zero trust on the real stack: impostors and replays are refused with their reasons, every attempt is
in the audit trail, and legitimate participants (clocks a little off included) are admitted."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from uuid import uuid4

import asyncpg
import pytest
import redis.asyncio as aioredis

from fedstream.messaging.codec import encode
from fedstream.participant.identity import ParticipantKeys
from fedstream.security import signing
from fedstream.security.signing import key_id_of
from fedstream.storage import tensors
from schemas import events as ev
from schemas.base import utcnow
from schemas.identity import ParticipantKeyRevoked, RevokeParticipantKey
from schemas.topics import IDENTITY, OPERATOR, SUBMISSIONS
from tests.integration.harness import Submitter, TopicLog, wait_caught_up
from tests.integration.test_bad_input import small_spec, start

pytestmark = pytest.mark.integration
R = ev.RejectionReason


class Attempts:
    """Builds submissions for one federation and remembers what each should come to."""

    def __init__(self, sub: Submitter, federation_id: str, ref: ev.BlobRef) -> None:
        self.sub, self.federation_id, self.ref = sub, federation_id, ref
        self.expected: dict = {}  # update id → reason, or "accepted"

    def build(self, participant: str, round_number: int = 1) -> ev.UpdateSubmitted:
        return ev.UpdateSubmitted(
            source=f"participant/{participant}", federation_id=self.federation_id, update_id=uuid4(),
            participant_id=participant, round=round_number, base_model_version=0, update=self.ref, num_examples=10,
            train_loss=0.5,
        )

    async def send(self, event: ev.UpdateSubmitted, outcome) -> ev.UpdateSubmitted:  # noqa: ANN001 - a reason or "accepted"
        self.expected[event.event_id] = (event.update_id, outcome)
        await self.sub.publish(event)
        return event


async def revoke(stack, sub: Submitter, participant: str) -> None:
    """The operator revokes the participant's key; wait until ingestion has seen it."""
    org = f"org-{participant}"
    key_id = key_id_of(sub.keys.public_key(participant))
    async with TopicLog(stack.endpoints, org, (IDENTITY,)) as identity_log:
        await sub.publish(RevokeParticipantKey(source=OPERATOR, federation_id=org, participant_id=participant, key_id=key_id,
                                               reason="laptop stolen", requested_by="admin"))
        await identity_log.wait_event(ParticipantKeyRevoked, lambda e: e.key_id == key_id)
    await wait_caught_up(stack.endpoints, "fedstream-ingestion", (IDENTITY,))


async def test_impostors_and_replays_are_refused_and_audited(stack):
    spec = small_spec(f"zt-{uuid4().hex[:8]}", quorum=3, round_deadline_s=300)
    log, initial = await start(stack, spec)
    try:
        async with Submitter(stack.endpoints, spec.federation_id) as sub:
            thief = f"zt-thief-{uuid4().hex[:6]}"  # a participant whose key gets revoked
            await sub.enrol("a", "b", "c", thief)
            ref = await sub.blobs.put(tensors.to_bytes({k: v + 0.5 for k, v in initial.items()}))
            at = Attempts(sub, spec.federation_id, ref)
            now = utcnow()

            # impersonation: unsigned, an unknown key, a's key claiming to be b, a revoked key
            await at.send(at.build("a"), R.UNSIGNED)
            stranger = ParticipantKeys()
            await at.send(stranger.sign(at.build("a")), R.UNKNOWN_KEY)
            await at.send(signing.sign(at.build("b"), SUBMISSIONS.name, sub.keys.key("a"), now), R.SOURCE_MISMATCH)
            await revoke(stack, sub, thief)
            await at.send(sub.keys.sign(at.build(thief)), R.KEY_REVOKED)

            # a's genuine update, then its replays: within the window, into another round, after Redis is flushed
            original = await at.send(sub.keys.sign(at.build("a")), "accepted")
            await log.wait_event(ev.UpdateAccepted, lambda e: e.update_id == original.update_id)
            await at.send(original.model_copy(update={"event_id": uuid4()}), R.REPLAYED)
            await at.send(original.model_copy(update={"event_id": uuid4(), "round": 2}), R.SIGNATURE_INVALID)
            await log.wait_for(lambda l: len(l.events(ev.UpdateRejected)) >= len(at.expected) - 1)
            client = aioredis.from_url(stack.endpoints.redis_url)
            await client.flushall()
            await client.aclose()
            await at.send(original.model_copy(update={"event_id": uuid4()}), R.REPLAYED)
            # captured and replayed after the window: what ingestion sees is a signature older than it allows
            await at.send(sub.keys.sign(at.build("b"), now - timedelta(seconds=400)), R.STALE)

            # legitimate participants with clocks two minutes off either way are admitted
            await at.send(sub.keys.sign(at.build("b"), now + timedelta(seconds=120)), "accepted")
            await at.send(sub.keys.sign(at.build("c"), now - timedelta(seconds=120)), "accepted")

            aggregated = await log.wait_event(ev.RoundAggregated, timeout=120)
            refusals = sum(1 for _, outcome in at.expected.values() if outcome != "accepted")
            await log.wait_for(lambda l: len(l.events(ev.UpdateRejected)) >= refusals)

        # replays share their original's update id: compare every update's refusals as a multiset
        expected_refusals: dict = {}
        for update_id, outcome in at.expected.values():
            if outcome != "accepted":
                expected_refusals.setdefault(update_id, []).append(outcome.value)
        refusals_seen: dict = {}
        for e in log.events(ev.UpdateRejected):
            refusals_seen.setdefault(e.update_id, []).append(e.reason.value)
        assert {u: sorted(r) for u, r in refusals_seen.items()} == {u: sorted(r) for u, r in expected_refusals.items()}
        accepted = {e.update_id for e in log.events(ev.UpdateAccepted)}
        # only the three genuine updates were ever accepted, and they alone were aggregated
        genuine = {u for u, outcome in at.expected.values() if outcome == "accepted"}
        assert accepted == genuine
        assert {c.update_id for c in aggregated.contributions} == genuine

        # every attempt, and every refusal, is in the hash-chained audit trail
        attempts = set(at.expected)
        refusals = {e.event_id for e in log.events(ev.UpdateRejected)}
        conn = await asyncpg.connect(stack.endpoints.database_url)
        try:
            audited = await _wait_audited(conn, attempts | refusals)
        finally:
            await conn.close()
        assert audited == attempts | refusals
    finally:
        await log.__aexit__(None, None, None)


async def _wait_audited(conn: asyncpg.Connection, wanted: set, timeout: float = 60) -> set:
    deadline = time.monotonic() + timeout
    while True:
        rows = await conn.fetch("SELECT event_id FROM audit_trail WHERE event_id = ANY($1::uuid[])", list(wanted))
        found = {r["event_id"] for r in rows}
        if found >= wanted or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)  # polling a condition in PostgreSQL, bounded by the deadline


async def test_a_submission_with_extra_fields_is_refused_with_its_reason(stack):
    spec = small_spec(f"zt-min-{uuid4().hex[:8]}", quorum=1, round_deadline_s=300)
    log, initial = await start(stack, spec)
    try:
        async with Submitter(stack.endpoints, spec.federation_id) as sub:
            await sub.enrol("a")
            ref = await sub.blobs.put(tensors.to_bytes(initial))
            event = sub.keys.sign(Attempts(sub, spec.federation_id, ref).build("a"))
            record = encode(event, SUBMISSIONS.name)
            value = record.value.replace(b'{"event_id"', b'{"patient_name":"Jane Doe","event_id"', 1)
            await sub.producer.send_and_wait(SUBMISSIONS.name, value=value, key=record.key, headers=record.headers)
            refused = await log.wait_event(ev.UpdateRejected, lambda e: e.update_id == event.update_id)
        assert refused.reason is R.EXTRA_FIELDS and "patient_name" in refused.detail
        assert not [e for e in log.events(ev.UpdateAccepted) if e.update_id == event.update_id]
        dead = [r for r in log.records if r.topic == "fedstream.deadletter" and r.header("x-fedstream-consumer") == "ingestion"]
        assert dead == []  # answered with a reason, not dead-lettered
    finally:
        await log.__aexit__(None, None, None)
