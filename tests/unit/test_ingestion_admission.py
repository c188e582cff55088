"""Every admission rule, through the handler with in-memory fakes."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
import pytest

from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.participant.identity import ParticipantKeys
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from fedstream.storage.coordination import InMemoryCoordination
from services.ingestion.fakes import InMemoryAdmissionRepository
from services.ingestion.handlers import IngestionHandlers
from schemas import events as ev
from schemas.federation import FederationSpec, parse_spec
from tests.unit.helpers import PARAMS_SHAPES, emitted, identity_facts, put_weights, weights

NOW = datetime(2026, 1, 1, tzinfo=UTC)
R = ev.RejectionReason


def spec(max_bytes: int = 10_000) -> FederationSpec:
    return parse_spec(f"""
federation_id: f
project_name: test
use_case: clinical_prediction
participants: [{{participant_id: a, organisation: oa}}, {{participant_id: b, organisation: ob}}, {{participant_id: c, organisation: oc}}]
model: {{architecture: logistic, input_dim: 3}}
training: {{quorum: 2}}
limits: {{max_update_bytes: {max_bytes}}}
""")


class Harness:
    def __init__(self) -> None:
        self.blobs, self.now = InMemoryBlobStore(), NOW
        self.coordination = InMemoryCoordination(clock=lambda: self.now.timestamp())
        self.handlers = IngestionHandlers(self.blobs, self.coordination, clock=lambda: self.now)
        self.txs = InMemoryTransactions(InMemoryAdmissionRepository())
        self.keys = ParticipantKeys()  # every participant here is enrolled, consents and has a BAA

    async def deliver(self, event) -> list:
        before = len(self.txs.published)
        async with self.txs.begin() as tx:
            if await tx.first_delivery(event.event_id):
                await self.handlers.table()[type(event)](event, tx)
        return emitted(self.txs.published[before:])

    async def start(self, participants=("a", "b")) -> None:
        s = spec()
        params = tensors.specs_of(weights())
        ref = await put_weights(self.blobs, weights())
        for participant in ("a", "b", "c", "mallory"):
            for fact in identity_facts(participant, self.keys.public_key(participant), self.now):
                await self.deliver(fact)
        await self.deliver(ev.FederationCreated(source="registry", federation_id="f", spec=s, params=params, initial_model=ref))
        await self.deliver(self.opened(1, participants))

    def opened(self, round_number, participants=("a", "b")):
        return ev.RoundOpened(source="registry", federation_id="f", round=round_number, model_version=0,
                              global_model=ev.BlobRef(uri="memory://x", sha256="0" * 64, size=1), participants=participants,
                              quorum=1, deadline=self.now + timedelta(seconds=30), local_epochs=1, learning_rate=0.1,
                              batch_size=8)

    async def submit(self, participant="a", round_number=1, payload=None, ref=None, federation="f"):
        if ref is None:
            ref = await self.blobs.put(payload if payload is not None else tensors.to_bytes(weights(1.0)))
        return await self.deliver(self.keys.sign(ev.UpdateSubmitted(
            source=f"participant/{participant}", federation_id=federation, update_id=uuid4(), participant_id=participant,
            round=round_number, base_model_version=0, update=ref, num_examples=5, train_loss=0.3), self.now))

    async def expire_parked(self, after_s: float = 31) -> list:
        """Let the parking TTL pass and run ingestion's timer."""
        self.now += timedelta(seconds=after_s)
        before = len(self.txs.published)
        await self.handlers.expire_parked(self.txs)
        return emitted(self.txs.published[before:])


@pytest.fixture
async def h():
    harness = Harness()
    await harness.start()
    return harness


async def reason(events):
    [event] = events
    return event.reason if isinstance(event, ev.UpdateRejected) else "accepted"


async def test_a_valid_update_is_accepted(h):
    [accepted] = await h.submit()
    assert isinstance(accepted, ev.UpdateAccepted) and accepted.participant_id == "a"


async def test_unknown_federation_is_refused_once_its_parking_ttl_passes(h):
    assert await h.submit(federation="nope") == []  # it may still be created: parked
    assert await reason(await h.expire_parked()) is R.UNKNOWN_FEDERATION


async def test_unknown_participant(h):
    assert await reason(await h.submit(participant="mallory")) is R.NOT_ENROLLED


async def test_enrolled_but_not_selected(h):
    assert await reason(await h.submit(participant="c")) is R.NOT_SELECTED


async def test_future_round_is_refused_once_its_parking_ttl_passes(h):
    assert await h.submit(round_number=2) == []
    assert await h.expire_parked(after_s=29) == []  # not yet
    assert await reason(await h.expire_parked(after_s=2)) is R.UNKNOWN_ROUND


async def test_stale_round_after_a_newer_one_opened(h):
    await h.deliver(h.opened(2))
    assert await reason(await h.submit(round_number=1)) is R.STALE_ROUND


async def test_late_after_the_deadline(h):
    h.now = NOW + timedelta(seconds=31)
    assert await reason(await h.submit()) is R.STALE_ROUND


async def test_duplicate_from_the_same_participant(h):
    assert await reason(await h.submit()) == "accepted"
    assert await reason(await h.submit()) is R.DUPLICATE


async def test_oversize_is_refused_before_reading_the_blob(h):
    ref = ev.BlobRef(uri="memory://missing", sha256="1" * 64, size=10_001)
    assert await reason(await h.submit(ref=ref)) is R.OVERSIZE


async def test_wrong_shape(h):
    bad = {**weights(1.0), "0.weight": np.ones((2, 3), np.float32)}
    assert await reason(await h.submit(payload=tensors.to_bytes(bad))) is R.SHAPE_MISMATCH


async def test_wrong_dtype(h):
    bad = {name: np.ones(shape, np.float64) for name, shape in PARAMS_SHAPES.items()}
    assert await reason(await h.submit(payload=tensors.to_bytes(bad))) is R.SHAPE_MISMATCH


async def test_nan(h):
    bad = weights(1.0)
    bad["0.bias"][0] = np.nan
    assert await reason(await h.submit(payload=tensors.to_bytes(bad))) is R.NON_FINITE


async def test_not_safetensors(h):
    assert await reason(await h.submit(payload=b"\x80\x04pickle-ish bytes")) is R.MALFORMED_TENSORS


async def test_hash_mismatch(h):
    ref = await h.blobs.put(tensors.to_bytes(weights(1.0)))
    h.blobs.blobs[ref.sha256] = tensors.to_bytes(weights(2.0))  # tampered at rest
    assert await reason(await h.submit(ref=ref)) is R.HASH_MISMATCH


async def test_missing_blob(h):
    ref = ev.BlobRef(uri="memory://gone", sha256="2" * 64, size=100)
    assert await reason(await h.submit(ref=ref)) is R.BLOB_UNAVAILABLE


async def test_a_flushed_round_cache_is_rebuilt_from_the_database(h):
    h.coordination.rounds.clear()
    assert await reason(await h.submit()) == "accepted"
    assert await h.coordination.cached_round("f") is not None


async def test_prefetched_verdicts_match_inline_ones(h):
    bad = weights(1.0)
    bad["0.bias"][0] = np.inf
    submissions = []
    for participant, payload in (("a", tensors.to_bytes(weights(1.0))), ("b", tensors.to_bytes(bad))):
        ref = await h.blobs.put(payload)
        submissions.append(h.keys.sign(ev.UpdateSubmitted(
            source=f"participant/{participant}", federation_id="f", update_id=uuid4(), participant_id=participant,
            round=1, base_model_version=0, update=ref, num_examples=5, train_loss=0.3), h.now))
    await h.handlers.prefetch(submissions)
    assert set(h.handlers._checks) == {s.update_id for s in submissions}  # verification started for both
    [accepted] = await h.deliver(submissions[0])
    [refused] = await h.deliver(submissions[1])
    assert isinstance(accepted, ev.UpdateAccepted)
    assert refused.reason is R.NON_FINITE and h.handlers._checks == {}
