"""Ingestion's zero-trust gate, parking and data minimisation, through the handlers with in-memory fakes."""

from datetime import timedelta
from uuid import uuid4

import pytest

from fedstream.messaging.codec import MalformedMessage, Record, decode, encode
from fedstream.participant.identity import ParticipantKeys
from fedstream.security.signing import key_id_of, sign
from fedstream.storage import tensors
from schemas import events as ev
from schemas.identity import BaaRegistered, ConsentRecorded, ParticipantKeyRevoked
from tests.unit.helpers import emitted, identity_facts, weights
from tests.unit.test_ingestion_admission import Harness, reason

R = ev.RejectionReason


@pytest.fixture
async def h():
    harness = Harness()
    await harness.start()
    return harness


async def submission(h: Harness, participant="a", round_number=1, federation="f") -> ev.UpdateSubmitted:
    ref = await h.blobs.put(tensors.to_bytes(weights(1.0)))
    return ev.UpdateSubmitted(
        source=f"participant/{participant}", federation_id=federation, update_id=uuid4(), participant_id=participant,
        round=round_number, base_model_version=0, update=ref, num_examples=5, train_loss=0.3)


async def signed(h: Harness, participant="a", signer=None, at=None, **kw) -> ev.UpdateSubmitted:
    event = await submission(h, participant, **kw)
    return h.keys.sign(event, at or h.now) if signer is None else _sign_as(signer, event, at or h.now)


def _sign_as(keys: ParticipantKeys, event, now):
    """Sign with ``keys``' only key, whoever the event claims to be."""
    [key] = keys.keys.values()
    return sign(event, "fedstream.submissions", key, now)


def a_key_of(h: Harness, participant: str) -> ParticipantKeys:
    return ParticipantKeys(keys={participant: h.keys.key(participant)})


# --- impersonation -------------------------------------------------------------------------------


async def test_unsigned_is_refused(h):
    assert await reason(await h.deliver(await submission(h))) is R.UNSIGNED


async def test_an_unknown_key_is_refused(h):
    stranger = ParticipantKeys()
    stranger.key("a")  # a key nobody enrolled, claiming to be a
    assert await reason(await h.deliver(await signed(h, "a", signer=stranger))) is R.UNKNOWN_KEY


async def test_a_revoked_key_is_refused(h):
    key_id = key_id_of(h.keys.public_key("a"))
    await h.deliver(ParticipantKeyRevoked(source="registry", federation_id="org-a", participant_id="a", key_id=key_id))
    assert await reason(await h.deliver(await signed(h, "a"))) is R.KEY_REVOKED


async def test_a_key_of_a_claiming_to_be_b_is_refused(h):
    assert await reason(await h.deliver(await signed(h, "b", signer=a_key_of(h, "a")))) is R.SOURCE_MISMATCH


async def test_a_source_other_than_the_signer_is_refused(h):
    event = (await submission(h, "a")).model_copy(update={"source": "participant/b"})
    assert await reason(await h.deliver(h.keys.sign(event, h.now))) is R.SOURCE_MISMATCH


async def test_a_field_changed_after_signing_breaks_the_signature(h):
    event = await signed(h, "a")
    for change in ({"round": 2}, {"num_examples": 500}, {"update": event.update.model_copy(update={"sha256": "3" * 64})}):
        tampered = event.model_copy(update={**change, "event_id": uuid4()})
        assert await reason(await h.deliver(tampered)) is R.SIGNATURE_INVALID


async def test_a_signature_survives_the_wire(h):
    """What the verifier checks is what the codec decodes: the canonical form survives JSON."""
    event = await signed(h, "a")
    [accepted] = await h.deliver(decode(encode(event, "fedstream.submissions")))
    assert isinstance(accepted, ev.UpdateAccepted)


# --- freshness and replay ------------------------------------------------------------------------


@pytest.mark.parametrize("skew_s", [-299, 299])
async def test_clock_skew_within_the_window_is_accepted(h, skew_s):
    [accepted] = await h.deliver(await signed(h, "a", at=h.now + timedelta(seconds=skew_s)))
    assert isinstance(accepted, ev.UpdateAccepted)


@pytest.mark.parametrize("skew_s", [-301, 301])
async def test_outside_the_window_is_stale(h, skew_s):
    assert await reason(await h.deliver(await signed(h, "a", at=h.now + timedelta(seconds=skew_s)))) is R.STALE


async def test_a_replay_within_the_window_is_refused(h):
    original = await signed(h, "a")
    assert await reason(await h.deliver(original)) == "accepted"
    # the same signed bytes under a new transport id (the inbox would swallow an identical one)
    assert await reason(await h.deliver(original.model_copy(update={"event_id": uuid4()}))) is R.REPLAYED


async def test_a_replay_after_the_window_is_stale(h):
    original = await signed(h, "a")
    await h.deliver(original)
    h.now += timedelta(seconds=301)
    assert await reason(await h.deliver(original.model_copy(update={"event_id": uuid4()}))) is R.STALE


async def test_a_replay_after_redis_is_flushed_is_still_refused(h):
    original = await signed(h, "b")
    await h.deliver(original)
    h.coordination.flush()
    assert await reason(await h.deliver(original.model_copy(update={"event_id": uuid4()}))) is R.REPLAYED


async def test_a_retried_delivery_is_not_its_own_replay(h):
    """A batch rolled back after the nonce reached Redis comes again with the same event id."""
    event = await signed(h, "a")
    assert await h.coordination.claim_nonce(f"{event.signature.key_id}:{event.signature.nonce}", str(event.event_id), 600)
    assert await reason(await h.deliver(event)) == "accepted"


async def test_a_replay_into_another_round_is_refused(h):
    original = await signed(h, "a")
    await h.deliver(original)
    await h.deliver(h.opened(2))
    moved = original.model_copy(update={"event_id": uuid4(), "round": 2})
    assert await reason(await h.deliver(moved)) is R.SIGNATURE_INVALID


# --- consent, BAA, rate limits -------------------------------------------------------------------


async def test_without_consent_no_admission(h):
    await h.deliver(ConsentRecorded(source="registry", federation_id="org-a", participant_id="a", purpose="federated_training",
                                    scope="f", expires_at=h.now + timedelta(days=1), granted=False))
    assert await reason(await h.deliver(await signed(h, "a"))) is R.NO_CONSENT


async def test_expired_consent_is_no_consent(h):
    h.now += timedelta(days=366)
    assert await reason(await h.deliver(await signed(h, "a"))) is R.NO_CONSENT


async def test_without_an_active_baa_no_admission(h):
    await h.deliver(BaaRegistered(source="registry", federation_id="org-a", organisation="org-a", reference="baa-1",
                                  expires_at=h.now + timedelta(days=1), active=False))
    assert await reason(await h.deliver(await signed(h, "a"))) is R.NO_BAA


async def test_a_flooding_participant_is_rate_limited_and_the_others_are_not(h):
    burst = int(h.handlers.gate.policy.bucket.burst)
    verdicts = [await reason(await h.deliver(await signed(h, "a"))) for _ in range(burst + 5)]
    assert verdicts[0] == "accepted" and set(verdicts[1:burst]) == {R.DUPLICATE}  # authenticated, then one per round
    assert verdicts[burst:] == [R.RATE_LIMITED] * 5
    assert await reason(await h.deliver(await signed(h, "b"))) == "accepted"
    h.now += timedelta(seconds=1)  # the bucket refills
    assert await reason(await h.deliver(await signed(h, "a"))) is R.DUPLICATE


async def test_an_impostor_cannot_drain_anothers_bucket(h):
    stranger = ParticipantKeys()
    stranger.key("b")
    burst = int(h.handlers.gate.policy.bucket.burst)
    for _ in range(burst + 5):
        assert await reason(await h.deliver(await signed(h, "b", signer=stranger))) is R.UNKNOWN_KEY
    assert await reason(await h.deliver(await signed(h, "b"))) == "accepted"


# --- data minimisation ---------------------------------------------------------------------------


async def test_extra_fields_are_refused_with_their_names(h):
    record = encode(await signed(h, "a"), "fedstream.submissions")
    value = record.value.replace(b'{"event_id"', b'{"patient_name":"x","event_id"', 1)
    value = value.replace(b'"uri"', b'"mrn":"123","uri"', 1)
    tampered = Record(record.topic, record.key, value, record.headers)
    with pytest.raises(MalformedMessage):
        decode(tampered)
    before = len(h.txs.published)
    async with h.txs.begin() as tx:
        assert await h.handlers.on_malformed(tampered, MalformedMessage("extra"), tx)
    [refused] = emitted(h.txs.published[before:])
    assert refused.reason is R.EXTRA_FIELDS and "patient_name" in refused.detail and "update.mrn" in refused.detail
    assert refused.participant_id == "a"


async def test_other_malformed_records_are_left_to_the_dead_letter_topic(h):
    record = encode(await signed(h, "a"), "fedstream.submissions")
    for value in (b"\xff not json", record.value.replace(b'"round":1', b'"round":"one"'),
                  record.value.replace(b'{"event_id"', b'{"x":1,"event_id"').replace(b'"round":1', b'"round":0')):
        async with h.txs.begin() as tx:
            assert not await h.handlers.on_malformed(Record(record.topic, record.key, value, record.headers), MalformedMessage("bad"), tx)


# --- parking (the cross-topic race) --------------------------------------------------------------


async def test_a_submission_ahead_of_its_round_is_admitted_when_the_round_opens(h):
    early = await signed(h, "a", round_number=2)
    assert await h.deliver(early) == []
    [accepted] = await h.deliver(h.opened(2))
    assert isinstance(accepted, ev.UpdateAccepted) and accepted.update_id == early.update_id


async def test_a_submission_ahead_of_its_federation_is_admitted_when_it_opens():
    h = Harness()
    for fact in identity_facts("a", h.keys.public_key("a"), h.now):
        await h.deliver(fact)
    early = await signed(h, "a")
    assert await h.deliver(early) == []
    await h.start()
    assert [e.update_id for e in emitted(h.txs.published) if isinstance(e, ev.UpdateAccepted)] == [early.update_id]


async def test_parked_for_a_round_that_was_skipped_is_refused_as_stale(h):
    early = await signed(h, "a", round_number=2)
    await h.deliver(early)
    [refused] = await h.deliver(h.opened(3))
    assert refused.reason is R.STALE_ROUND and refused.update_id == early.update_id


async def test_parked_when_the_federation_completes_is_refused(h):
    early = await signed(h, "a", round_number=2)
    await h.deliver(early)
    [refused] = await h.deliver(ev.FederationCompleted(source="registry", federation_id="f", reason=ev.CompletionReason.ROUND_BUDGET, rounds=1,
                                                       final_model_version=1))
    assert refused.reason is R.UNKNOWN_ROUND


async def test_a_parked_update_is_decided_once(h):
    early = await signed(h, "a", round_number=2)
    await h.deliver(early)
    await h.deliver(h.opened(2))
    assert await h.expire_parked() == []


async def test_a_revocation_takes_effect_on_the_next_submission(h):
    assert await reason(await h.deliver(await signed(h, "a"))) == "accepted"  # the key is now looked up (and cached)
    key_id = key_id_of(h.keys.public_key("a"))
    await h.deliver(ParticipantKeyRevoked(source="registry", federation_id="org-a", participant_id="a", key_id=key_id))
    assert await reason(await h.deliver(await signed(h, "a"))) is R.KEY_REVOKED


async def test_a_flood_in_one_batch_gets_one_verification_ahead_of_time(h):
    flood = [await signed(h, "a") for _ in range(8)]  # within the burst: every one is authenticated and counted
    other = await signed(h, "b")
    await h.handlers.prefetch([*flood, other])
    assert set(h.handlers._checks) == {flood[0].update_id, other.update_id}
    before = len(h.txs.published)
    async with h.txs.begin() as tx:  # one batch, one transaction: as the consumer runs it
        for event in (*flood, other):
            await h.handlers.table()[type(event)](event, tx)
    verdicts = [await reason([e]) for e in emitted(h.txs.published[before:])]
    assert verdicts[0] == "accepted" and set(verdicts[1:-1]) == {R.DUPLICATE} and verdicts[-1] == "accepted"
    assert h.handlers._checks == {}


async def test_once_admitted_a_participants_further_updates_are_duplicates_unread(h):
    assert await reason(await h.deliver(await signed(h, "a"))) == "accepted"
    missing = ev.BlobRef(uri="memory://never-written", sha256="4" * 64, size=100)  # reading it would say blob_unavailable
    event = h.keys.sign((await submission(h, "a")).model_copy(update={"update": missing}), h.now)
    assert await reason(await h.deliver(event)) is R.DUPLICATE


async def test_a_batch_is_judged_together_and_a_flood_beyond_its_bucket_costs_no_signature_check(h):
    """Refusing a flood must be cheap: one read of the buckets and one nonce-and-token round trip per batch,
    and no signature check once the sender's bucket is empty (it would be refused either way)."""
    from fedstream.messaging.consumer import BatchProcessor, Dispatcher
    from fedstream.security import signing

    calls, verified = [], []
    attempts, verify = h.coordination.admission_attempts, signing.verify

    async def counted(batch):
        calls.append(len(batch))
        return await attempts(batch)

    def counted_verify(*args):
        verified.append(args[0].participant_id)
        return verify(*args)

    h.coordination.admission_attempts = counted
    lookups = {}
    for name in ("keys", "use_nonces", "consents_of", "baas"):
        original = getattr(h.txs.repo, name)

        async def looked_up(arg, original=original, name=name):
            lookups[name] = lookups.get(name, 0) + 1
            return await original(arg)

        setattr(h.txs.repo, name, looked_up)
    burst = int(h.handlers.gate.policy.bucket.burst)
    flood = [await signed(h, "a") for _ in range(burst + 5)]
    impostor, honest = await signed(h, "b", signer=a_key_of(h, "a")), await signed(h, "b")
    replay = honest.model_copy(update={"event_id": uuid4()})  # the event id is a transport id: not signed
    batch = [*flood, impostor, honest, replay]
    processor = BatchProcessor(h.txs, Dispatcher(h.handlers.table()), prefetch=h.handlers.prefetch)
    before = len(h.txs.published)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(signing, "verify", counted_verify)
        await processor.process([encode(e, "fedstream.submissions") for e in batch])
    verdicts = [await reason([e]) for e in emitted(h.txs.published[before:])]
    assert calls == [burst + 2]  # a's burst, b's message and its replay; the impostor fails its claim
    assert verified == ["a"] * burst + ["b", "b"]
    assert lookups == {"keys": 1, "use_nonces": 1, "consents_of": 1, "baas": 1}  # one round trip each, per batch
    assert verdicts[0] == "accepted" and set(verdicts[1:burst]) == {R.DUPLICATE}
    assert verdicts[burst:len(flood)] == [R.RATE_LIMITED] * 5
    assert verdicts[len(flood):] == [R.SOURCE_MISMATCH, "accepted", R.REPLAYED]


async def test_a_forgery_refused_behind_an_empty_bucket_costs_its_participant_nothing(h):
    burst = int(h.handlers.gate.policy.bucket.burst)
    forged = [(await signed(h, "a")).model_copy(update={"num_examples": 10_000}) for _ in range(burst + 3)]
    for event in forged:  # the forger's own messages use none of a's tokens
        assert await reason(await h.deliver(event)) is R.SIGNATURE_INVALID
    assert await reason(await h.deliver(await signed(h, "a"))) == "accepted"
