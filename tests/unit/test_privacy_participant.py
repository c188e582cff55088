"""The participant runtime trains with DP-SGD when its federation asks, and says what it ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from fedstream.ml.dataset import LocalDataset
from fedstream.ml.models import build_model, module_to_weights
from fedstream.participant.runtime import LocalParticipant, ParticipantRuntime
from fedstream.privacy.accountant import estimate
from fedstream.privacy.budgets import budget_for
from fedstream.privacy.mechanism import SampledGaussian
from fedstream.storage.blobs import InMemoryBlobStore
from schemas import events as ev
from schemas.federation import CryptoApproach, FederationSpec, ModelSpec, ParticipantSpec, TrainingSpec, UseCase

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def site(n: int = 120) -> LocalDataset:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3))
    y = (x[:, 0] > 0).astype(np.float32)
    return LocalDataset(x, y, x[:10], y[:10], site=0, name="Toy")


async def train_once(crypto: CryptoApproach) -> ev.UpdateSubmitted:
    spec = FederationSpec(federation_id="f", project_name="p", use_case=UseCase.OTHER, crypto=crypto,
                          participants=(ParticipantSpec(participant_id="a", organisation="o"),),
                          model=ModelSpec(architecture="logistic", input_dim=3), training=TrainingSpec(rounds=20, quorum=1))
    runtime = ParticipantRuntime("f", [LocalParticipant("a", site())], consumer=None, producer=None, blobs=InMemoryBlobStore())
    runtime.progress.spec = spec
    opened = ev.RoundOpened(source="registry", federation_id="f", round=1, model_version=0, global_model=ev.BlobRef(uri="m://", sha256="a" * 64, size=1),
                            participants=("a",), quorum=1, deadline=NOW + timedelta(seconds=30), local_epochs=2, learning_rate=0.1, batch_size=16)
    try:
        return await runtime._train_one(runtime.local["a"], opened, module_to_weights(build_model(spec.model)))
    finally:
        runtime.executor.shutdown()


async def test_a_dp_federation_submits_dp_sgd_updates_whose_planned_noise_fits_every_round():
    update = await train_once(CryptoApproach.DP)
    assert update.protection == "dp" and update.privacy is not None
    p = update.privacy
    assert (p.sample_rate, p.steps, p.clipping_norm, p.dataset_id) == (1 / 8, 16, 1.0, "toy")
    budget = budget_for(FederationSpec.model_fields["privacy"].default)
    # Twenty rounds like this one (the spec's planned rounds) stay within the budget.
    assert estimate([SampledGaussian(p.noise_multiplier, p.sample_rate, p.steps)] * 20, budget.delta).epsilon <= budget.epsilon


async def test_a_plaintext_federation_submits_plaintext_updates():
    update = await train_once(CryptoApproach.NONE)
    assert update.protection == "plaintext" and update.privacy is None
