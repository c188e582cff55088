"""The participant runtime in an HE federation: it waits for the public context, then publishes its trained
update (after DP-SGD when DP is on) as ciphertexts the custodian's key decrypts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from fedstream.crypto import he
from fedstream.crypto.he_packing import flatten
from fedstream.ml.models import build_model, module_to_weights
from fedstream.participant.runtime import LocalParticipant, ParticipantRuntime
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from schemas import events as ev
from schemas.custody import HeContextPublished
from schemas.federation import CryptoApproach, FederationSpec, ModelSpec, ParticipantSpec, TrainingSpec, UseCase
from schemas.he import HeScheme, HeSpec
from tests.unit.test_privacy_participant import site

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def spec(scheme: HeScheme, local_dp: bool) -> FederationSpec:
    return FederationSpec(federation_id="f", project_name="p", use_case=UseCase.OTHER, crypto=CryptoApproach.HE,
                          he=HeSpec(scheme=scheme, local_dp=local_dp),
                          participants=(ParticipantSpec(participant_id="a", organisation="o"),),
                          model=ModelSpec(architecture="logistic", input_dim=3), training=TrainingSpec(rounds=20, quorum=1))


async def encrypted_round(scheme: HeScheme, local_dp: bool):
    s = spec(scheme, local_dp)
    blobs = InMemoryBlobStore()
    runtime = ParticipantRuntime("f", [LocalParticipant("a", site())], consumer=None, producer=None, blobs=blobs)
    published: list[ev.Event] = []

    async def publish(events, traceparent):  # noqa: ANN001 - stands in for Kafka
        published.extend(events)

    runtime._publish = publish
    initial = module_to_weights(build_model(s.model))
    model = await blobs.put(tensors.to_bytes(initial))
    created = ev.FederationCreated(source="registry", federation_id="f", spec=s, params=tensors.specs_of(initial), initial_model=model)
    opened = ev.RoundOpened(source="registry", federation_id="f", round=1, model_version=0, global_model=model, participants=("a",),
                            quorum=1, deadline=NOW + timedelta(seconds=30), local_epochs=2, learning_rate=0.1, batch_size=16)
    secret, public = he.make_context(s.he)
    context = HeContextPublished(source="key-custody", federation_id="f", scheme=scheme, fingerprint=secret.fingerprint,
                                 public_context=await blobs.put(public), params=s.he)
    try:
        await runtime._dispatch(created, "")
        await runtime._dispatch(opened, "")
        assert published == []  # no public context yet: nothing can be encrypted, nothing is sent in the clear
        await runtime._dispatch(context, "")
    finally:
        runtime.executor.shutdown()
    [update] = published
    values = he.decrypt(secret, await blobs.get(update.update), sum(p.size for p in created.params))
    return s, update, values, flatten(initial, created.params)


@pytest.mark.parametrize("local_dp", [False, True])
async def test_a_ckks_participant_sends_ciphertexts_of_its_trained_update(local_dp):
    _, update, values, initial = await encrypted_round(HeScheme.CKKS, local_dp)
    assert update.protection == ("dp_he" if local_dp else "he") and (update.privacy is not None) == local_dp
    assert update.update.media_type == he.MEDIA_TYPE
    assert np.all(np.isfinite(values)) and not np.allclose(values, initial, atol=1e-3)  # trained, then encrypted


async def test_a_bfv_participant_sends_its_quantised_update():
    s, update, values, _ = await encrypted_round(HeScheme.BFV, local_dp=False)
    assert update.protection == "he"
    assert values.dtype.kind == "i"  # integers: round(w · 2^bits), exact under BFV
    assert np.abs(he.dequantise(values, s.he.quantisation_bits)).max() < 100
