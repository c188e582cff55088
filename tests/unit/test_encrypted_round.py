"""An encrypted round through the aggregation and key-custody handlers (fakes for storage and transport):
the aggregator sums ciphertexts with only the public context; the custodian decrypts a quorum aggregate
and refuses anything else, each refusal an event."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fedstream.crypto import he
from fedstream.crypto.he_packing import flatten
from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.security.keys import InMemoryKeyManager
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from services.aggregation.fakes import InMemoryAggregationRepository
from services.aggregation.fedavg import weighted_average
from services.aggregation.handlers import AggregationHandlers
from services.key_custody.adapters import KeyfileKeyStore, KeyStoreError
from services.key_custody.fakes import InMemoryCustodyRepository, InMemoryKeyStore
from services.key_custody.handlers import CustodyHandlers, create_keys
from schemas import events as ev
from schemas.custody import AggregateDecrypted, DecryptionRefused, EncryptedAggregateReady, HeContextPublished, RefusalReason
from schemas.federation import CryptoApproach, FederationSpec, ModelSpec, ParticipantSpec, UseCase
from schemas.he import HeScheme, HeSpec
from tests.unit.helpers import charged, emitted, weights

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EXAMPLES = {"a": 40, "b": 25, "c": 90}


def he_spec(scheme: HeScheme, quorum: int = 2) -> FederationSpec:
    return FederationSpec(
        federation_id="f", project_name="encrypted", use_case=UseCase.OTHER,
        participants=tuple(ParticipantSpec(participant_id=p, organisation=f"org-{p}") for p in EXAMPLES),
        model=ModelSpec(architecture="logistic", input_dim=3), training={"quorum": quorum},
        crypto=CryptoApproach.HE, he=HeSpec(scheme=scheme),
    )


def local_update(pid: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(sorted(EXAMPLES).index(pid))
    return {name: rng.normal(0, 1, a.shape).astype(np.float32) for name, a in weights().items()}


class EncryptedRound:
    def __init__(self, scheme: HeScheme, quorum: int = 2) -> None:
        self.spec = he_spec(scheme, quorum)
        self.params = tensors.specs_of(weights())
        self.blobs = InMemoryBlobStore()
        self.aggregator = AggregationHandlers(self.blobs, lambda: NOW)
        self.custodian = CustodyHandlers(self.blobs, InMemoryKeyStore())
        self.agg_txs = InMemoryTransactions(InMemoryAggregationRepository())
        self.custody_txs = InMemoryTransactions(InMemoryCustodyRepository())
        self.public: he.FederationContext | None = None

    async def start(self, participants=tuple(EXAMPLES)) -> None:
        model = await self.blobs.put(tensors.to_bytes(weights()))
        created = ev.FederationCreated(source="registry", federation_id="f", spec=self.spec, params=self.params, initial_model=model)
        await deliver(self.custodian.on_federation_created, self.custody_txs, created)
        [context] = [e for e in emitted(self.custody_txs.published) if isinstance(e, HeContextPublished)]
        self.public = he.load_public_context(await self.blobs.get(context.public_context))
        await deliver(self.aggregator.on_federation_created, self.agg_txs, created)
        await deliver(self.aggregator.on_he_context, self.agg_txs, context)
        opened = ev.RoundOpened(source="registry", federation_id="f", round=1, model_version=0, global_model=model,
                                participants=participants, quorum=self.spec.training.quorum,
                                deadline=NOW + timedelta(seconds=30), local_epochs=1, learning_rate=0.1, batch_size=8)
        await deliver(self.aggregator.on_round_opened, self.agg_txs, opened)

    def encrypt(self, update: dict[str, np.ndarray], context: he.FederationContext | None = None) -> bytes:
        flat = flatten(update, self.params)
        if self.spec.he.scheme is HeScheme.BFV:
            flat = he.quantise(flat, self.spec.he.quantisation_bits)
        return he.encrypt(context or self.public, flat)

    async def submit(self, pid: str, payload: bytes | None = None) -> None:
        ref = await self.blobs.put(payload if payload is not None else self.encrypt(local_update(pid)), he.MEDIA_TYPE)
        await deliver(self.aggregator.on_charged, self.agg_txs, charged(pid, ref, EXAMPLES[pid]))

    def request(self) -> EncryptedAggregateReady:
        [request] = [e for e in emitted(self.agg_txs.published) if isinstance(e, EncryptedAggregateReady)]
        return request

    async def decrypt(self, request: EncryptedAggregateReady) -> list[ev.Event]:
        before = len(self.custody_txs.published)
        await deliver(self.custodian.on_aggregate_ready, self.custody_txs, request)
        return emitted(self.custody_txs.published[before:])


async def deliver(handler, txs, event) -> None:  # noqa: ANN001
    async with txs.begin() as tx:
        await handler(event, tx)


async def test_a_ckks_round_gives_the_plaintext_rounds_model_within_the_ckks_error_bound():
    r = EncryptedRound(HeScheme.CKKS)
    await r.start()
    for pid in EXAMPLES:
        await r.submit(pid)
    request = r.request()
    assert request.weighting == "fraction" and request.total_weight == sum(EXAMPLES.values())
    decrypted, aggregated = await r.decrypt(request)
    assert isinstance(decrypted, AggregateDecrypted) and decrypted.contributors == 3
    assert isinstance(aggregated, ev.RoundAggregated) and aggregated.source == "key-custody"
    model = tensors.from_bytes(await r.blobs.get(aggregated.aggregate))
    plain = weighted_average([local_update(p) for p in EXAMPLES], list(EXAMPLES.values()))
    for name in plain:
        np.testing.assert_allclose(model[name], plain[name], rtol=0, atol=1e-6)
    assert sorted(c.participant_id for c in aggregated.contributions) == sorted(EXAMPLES)


async def test_a_bfv_round_is_exact():
    r = EncryptedRound(HeScheme.BFV)
    await r.start()
    for pid in EXAMPLES:
        await r.submit(pid)
    _, aggregated = await r.decrypt(r.request())
    model = tensors.from_bytes(await r.blobs.get(aggregated.aggregate))
    bits, total = r.spec.he.quantisation_bits, sum(EXAMPLES.values())
    exact_sum = sum(n * he.quantise(flatten(local_update(p), r.params), bits) for p, n in EXAMPLES.items())
    expected = he.dequantise(exact_sum, bits) / total  # the same arithmetic on the plaintext integers
    assert np.array_equal(flatten(model, r.params), expected.astype(np.float32).astype(np.float64))


async def test_the_custodian_refuses_an_aggregate_below_quorum():
    r = EncryptedRound(HeScheme.CKKS, quorum=3)
    await r.start()
    for pid in EXAMPLES:
        await r.submit(pid)
    full = r.request()
    one = full.model_copy(update={"contributions": full.contributions[:2], "updates": full.updates[:2],
                                  "total_weight": sum(c.num_examples for c in full.contributions[:2])})
    [refused] = await r.decrypt(EncryptedAggregateReady.model_validate(one.model_dump()))
    assert isinstance(refused, DecryptionRefused) and refused.reason is RefusalReason.BELOW_QUORUM


async def test_the_custodian_refuses_an_individual_update_passed_off_as_the_aggregate():
    r = EncryptedRound(HeScheme.CKKS)
    await r.start()
    for pid in EXAMPLES:
        await r.submit(pid)
    request = r.request()
    lone = request.model_copy(update={"aggregate": request.updates[0]})
    [refused] = await r.decrypt(EncryptedAggregateReady.model_validate(lone.model_dump()))
    assert isinstance(refused, DecryptionRefused) and refused.reason is RefusalReason.NOT_THE_SUM
    assert r.custody_txs.repo.decryptions == {}


async def test_the_custodian_decrypts_a_round_once():
    r = EncryptedRound(HeScheme.CKKS)
    await r.start()
    for pid in EXAMPLES:
        await r.submit(pid)
    request = r.request()
    assert isinstance((await r.decrypt(request))[0], AggregateDecrypted)
    again = EncryptedAggregateReady.model_validate(request.model_dump(exclude={"event_id"}))
    [refused] = await r.decrypt(again)
    assert isinstance(refused, DecryptionRefused) and refused.reason is RefusalReason.ALREADY_DECRYPTED


@pytest.mark.parametrize("damage", ["truncated", "foreign", "plaintext"])
async def test_the_aggregator_does_not_count_a_damaged_or_foreign_ciphertext(damage):
    r = EncryptedRound(HeScheme.CKKS)
    await r.start()
    good = r.encrypt(local_update("a"))
    payload = {
        "truncated": good[:-64],
        "foreign": r.encrypt(local_update("a"), he.load_public_context(he.make_context(HeSpec())[1])),
        "plaintext": tensors.to_bytes(local_update("a")),
    }[damage]
    await r.submit("a", payload)
    [rejected] = emitted(r.agg_txs.published)
    assert isinstance(rejected, ev.UpdateRejected)
    expected = ev.RejectionReason.WRONG_CONTEXT if damage == "foreign" else ev.RejectionReason.MALFORMED_CIPHERTEXT
    assert rejected.reason is expected, rejected.detail
    assert (await r.agg_txs.repo.lock_round("f", 1)).received == 0


def test_secret_keys_are_sealed_at_rest_and_bound_to_their_federation(tmp_path):
    store = KeyfileKeyStore(tmp_path, InMemoryKeyManager())
    keys = create_keys(HeSpec())
    assert store.create("fed-a", keys) == keys
    assert store.create("fed-a", create_keys(HeSpec())) == keys  # a second init never replaces the keys
    stored = (tmp_path / "fed-a.he.json").read_bytes()
    doc = json.loads(stored)
    assert doc["fingerprint"] == keys.fingerprint
    secret = keys.secret_context  # it begins like the public context; find bytes only the secret one has
    secret_only = next(secret[i : i + 64] for i in range(0, len(secret), 64) if secret[i : i + 64] not in keys.public_context)
    assert all(secret_only not in base64.b64decode(doc[field]) for field in ("secret_context", "public_context", "wrapped_key"))
    assert oct((tmp_path / "fed-a.he.json").stat().st_mode & 0o777) == "0o600"
    assert store.load("fed-a") == keys
    (tmp_path / "fed-a.he.json").rename(tmp_path / "fed-b.he.json")
    with pytest.raises(KeyStoreError):
        store.load("fed-b")
