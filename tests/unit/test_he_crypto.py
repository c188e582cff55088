"""Homomorphic encryption maths (fedstream.crypto.he) and its spec: parameters, packing, sums, refusals."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from pydantic import ValidationError

from fedstream.crypto import he
from fedstream.crypto.he_parallel import InProcessSummer, ProcessPoolSummer, SumRequest
from fedstream.storage.blobs import FileBlobStore, open_blob_store
from schemas.federation import CryptoApproach, DpSpec, FederationSpec, ModelSpec, ParticipantSpec, UseCase
from schemas.he import HeScheme, HeSpec
from services.aggregation.fedavg import weighted_average

P = 10_000  # spans three CKKS ciphertexts (4096 slots) and two BFV ones (8192)
EXAMPLES = [120, 45, 300, 77]


@pytest.fixture(scope="module")
def ckks():
    secret, public = he.make_context(HeSpec())
    return secret, he.load_public_context(public)


@pytest.fixture(scope="module")
def bfv():
    secret, public = he.make_context(HeSpec(scheme=HeScheme.BFV))
    return secret, he.load_public_context(public)


def updates(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.5, P) for _ in EXAMPLES]


# --- parameters ------------------------------------------------------------------------------


def test_default_parameters_are_ckks_at_128_bits_and_written_out():
    dumped = HeSpec().model_dump(mode="json")
    assert dumped["scheme"] == "ckks" and dumped["security_bits"] == 128 and dumped["poly_modulus_degree"] == 8192
    assert HeSpec().moduli == (60, 40, 60) and HeSpec().slots == 4096
    assert HeSpec(scheme=HeScheme.BFV).slots == 8192 and sum(HeSpec(scheme=HeScheme.BFV).moduli) == 218


def test_moduli_beyond_the_128_bit_table_are_refused():
    with pytest.raises(ValidationError, match="at most 109"):
        HeSpec(poly_modulus_degree=4096, coeff_mod_bit_sizes=(60, 40, 40, 60))
    HeSpec(poly_modulus_degree=16384, coeff_mod_bit_sizes=(60, 40, 40, 60))  # 200 ≤ 438


def test_a_ckks_scale_the_data_primes_cannot_hold_is_refused():
    with pytest.raises(ValidationError, match="global_scale_bits 50"):
        HeSpec(global_scale_bits=50)


def _spec(**kwargs) -> FederationSpec:
    return FederationSpec(federation_id="f", project_name="p", use_case=UseCase.OTHER,
                          participants=(ParticipantSpec(participant_id="a", organisation="o"),),
                          model=ModelSpec(architecture="logistic", input_dim=2), training={"quorum": 1}, **kwargs)


def test_he_federations_compose_with_local_dp_but_refuse_central_dp():
    assert _spec(crypto=CryptoApproach.HE).encrypted and not _spec(crypto=CryptoApproach.HE).local_dp
    assert _spec(crypto=CryptoApproach.HE, he=HeSpec(local_dp=True)).local_dp
    with pytest.raises(ValidationError, match="does not compose with dp.central"):
        _spec(crypto=CryptoApproach.HE, dp=DpSpec(central=True))


# --- the encrypted round ---------------------------------------------------------------------


def test_ckks_weighted_sum_is_fedavg_within_the_ckks_error_bound(ckks):
    secret, public = ckks
    xs = updates()
    total = sum(EXAMPLES)
    blob = he.weighted_sum(public, [he.encrypt(public, x) for x in xs], [n / total for n in EXAMPLES], P)
    plain = weighted_average([{"w": x} for x in xs], EXAMPLES)["w"]
    # CKKS error at scale 2^40: ~1e-9 per value here; 1e-6 leaves room and is far below any model's noise.
    np.testing.assert_allclose(he.decrypt(secret, blob, P), plain, rtol=0, atol=1e-6)


def test_bfv_weighted_sum_is_exact(bfv):
    secret, public = bfv
    quantised = [he.quantise(x, 16) for x in updates(1)]
    blob = he.weighted_sum(public, [he.encrypt(public, q) for q in quantised], EXAMPLES, P)
    exact = sum(n * q for n, q in zip(EXAMPLES, quantised))
    assert np.array_equal(he.decrypt(secret, blob, P), exact)


def test_the_aggregators_context_holds_no_secret_key_and_cannot_decrypt(ckks):
    secret, public = ckks
    assert secret.has_secret_key and not public.has_secret_key
    assert public.fingerprint == secret.fingerprint
    blob = he.encrypt(public, np.ones(10))
    with pytest.raises(ValueError, match="secret"):
        he.decrypt(public, blob, 10)
    with pytest.raises(he.SecretKeyPresent):
        he.load_public_context(he.secret_bytes(secret))


def test_truncated_and_tampered_ciphertexts_are_rejected_with_a_reason(ckks):
    _, public = ckks
    blob = he.encrypt(public, updates()[0])
    header, body = he.read_header(blob)
    truncated = blob[:-100]
    mangled = blob[: body + 8] + bytes(64) + blob[body + 72 :]  # the first ciphertext's own header zeroed
    resized = he.Header(header.scheme, header.context, P - 1, header.chunks).to_bytes() + blob[body:]
    for bad, reason in ((truncated, "malformed_ciphertext"), (mangled, "malformed_ciphertext"),
                        (b"PK\x03\x04" + blob[4:], "malformed_ciphertext"), (resized, "shape_mismatch")):
        with pytest.raises(he.CiphertextError) as caught:
            he.vectors(bad, public, P)
        assert caught.value.reason == reason, caught.value


def test_a_ciphertext_under_another_federations_context_gets_a_clear_error(ckks, bfv):
    _, ours = ckks
    _, theirs = he.make_context(HeSpec())
    foreign = he.encrypt(he.load_public_context(theirs), np.ones(P))
    with pytest.raises(he.ForeignContext, match="another federation's public context") as caught:
        he.weighted_sum(ours, [foreign], [1.0], P)
    assert caught.value.reason == "wrong_context"
    with pytest.raises(he.ForeignContext):
        he.check(he.encrypt(bfv[1], np.ones(P, np.int64)), ours, P)


def test_bfv_refuses_unquantised_floats(bfv):
    with pytest.raises(TypeError, match="quantise"):
        he.encrypt(bfv[1], np.ones(3))


# --- parallel summing ----------------------------------------------------------------------------


async def test_the_process_pool_sum_equals_the_serial_sum_byte_for_byte(tmp_path):
    store = FileBlobStore(tmp_path)
    _, public_bytes = he.make_context(HeSpec())
    context = he.load_public_context(public_bytes)
    context_ref = await store.put(public_bytes)
    refs = [await store.put(he.encrypt(context, x), he.MEDIA_TYPE) for x in updates(2)]
    weights = [n / sum(EXAMPLES) for n in EXAMPLES]
    request = SumRequest(context_ref, P, tuple(zip(refs, weights)))
    pool = ProcessPoolSummer(functools.partial(open_blob_store, tmp_path.as_uri()), workers=2)
    try:
        parallel = await pool.weighted_sum(request)
    finally:
        pool.close()
    assert parallel == await InProcessSummer(store).weighted_sum(request)


def test_ingestion_admits_only_a_ciphertext_frame_of_the_models_size_in_an_he_federation(ckks):
    from fedstream.storage import tensors
    from schemas.base import ParamSpec
    from schemas.events import RejectionReason
    from services.ingestion.domain import check_tensors

    params = (ParamSpec(name="w", dtype="float32", shape=(P,)),)
    frame = ("ckks", 4096)
    good = he.encrypt(ckks[1], np.ones(P))
    assert check_tensors(good, params, frame) is None
    assert check_tensors(good[:-5], params, frame).reason is RejectionReason.MALFORMED_CIPHERTEXT
    assert check_tensors(good, params, ("bfv", 8192)).reason is RejectionReason.WRONG_CONTEXT
    plaintext = tensors.to_bytes({"w": np.ones(P, np.float32)})
    assert check_tensors(plaintext, params, frame).reason is RejectionReason.MALFORMED_CIPHERTEXT  # no clear text
    assert check_tensors(good, params).reason is RejectionReason.MALFORMED_TENSORS  # a plaintext federation
    small = (ParamSpec(name="w", dtype="float32", shape=(P - 1,)),)
    assert check_tensors(good, small, frame).reason is RejectionReason.SHAPE_MISMATCH
