"""Central DP-FedAvg end to end through the aggregation and privacy-accounting handlers (fakes)."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import dp_accounting
import numpy as np
import pytest

from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.privacy.accountant import TwoAccountants
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from services.aggregation.fakes import InMemoryAggregationRepository
from services.aggregation.handlers import AggregationHandlers
from services.privacy_accounting.fakes import InMemoryLedgerRepository
from services.privacy_accounting.handlers import PrivacyHandlers
from schemas import events as ev
from schemas.federation import parse_spec
from tests.unit.helpers import charged, emitted, put_weights, weights

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def spec(noise_multiplier: float, adaptive: bool = False):
    return parse_spec(f"""
federation_id: f
project_name: central
use_case: aggregate_statistics
participants: [{{participant_id: a, organisation: oa}}, {{participant_id: b, organisation: ob}}]
model: {{architecture: logistic, input_dim: 3}}
crypto: dp
dp: {{local: false, central: true, central_clipping_norm: 1.0, central_noise_multiplier: {noise_multiplier},
      adaptive_clipping: {str(adaptive).lower()}, target_quantile: 0.5}}
privacy: {{data_sensitivity: aggregate, epsilon: 1.0, delta: 1.0e-5}}
training: {{quorum: 2}}
""")


async def aggregate(noise_multiplier: float, deltas: dict[str, float], adaptive: bool = False):
    blobs = InMemoryBlobStore()
    rng = np.random.default_rng(7)
    handlers = AggregationHandlers(blobs, clock=lambda: NOW, noise=rng)
    txs = InMemoryTransactions(InMemoryAggregationRepository())
    base = await put_weights(blobs, weights(0.0))
    created = ev.FederationCreated(source="registry", federation_id="f", spec=spec(noise_multiplier, adaptive),
                                   params=tensors.specs_of(weights()), initial_model=base)
    opened = ev.RoundOpened(source="registry", federation_id="f", round=1, model_version=0, global_model=base,
                            participants=("a", "b"), quorum=2, deadline=NOW + timedelta(seconds=30),
                            local_epochs=1, learning_rate=0.1, batch_size=8)
    for event in (created, opened):
        async with txs.begin() as tx:
            await handlers.table()[type(event)](event, tx)
    for pid, value in deltas.items():
        async with txs.begin() as tx:
            await handlers.on_charged(charged(pid, await put_weights(blobs, weights(value))), tx)
    [aggregated] = emitted(txs.published)
    return aggregated, tensors.from_bytes(await blobs.get(aggregated.aggregate)), txs.repo


async def test_each_delta_is_clipped_to_s_before_averaging():
    # ‖Δa‖ = 0.1·√4 = 0.2 stays; ‖Δb‖ = 3·√4 = 6 is scaled to norm 1 (all 4 coordinates = 0.5)
    aggregated, model, _ = await aggregate(0.0, {"a": 0.1, "b": 3.0})
    np.testing.assert_allclose(model["0.weight"], np.full((1, 3), (0.1 + 0.5) / 2), rtol=1e-6)
    assert aggregated.central_dp.fraction_clipped == 0.5 and aggregated.central_dp.noise_stddev == 0.0


async def test_noise_of_sigma_s_is_added_and_reported():
    aggregated, model, _ = await aggregate(2.0, {"a": 0.1, "b": 0.1})
    assert aggregated.central_dp.noise_stddev == pytest.approx(2.0)
    assert not np.allclose(model["0.weight"], 0.1)  # the noise is really there


async def test_adaptive_clipping_moves_s_towards_the_target_quantile():
    aggregated, _, repo = await aggregate(0.0, {"a": 3.0, "b": 3.0}, adaptive=True)
    # every update was clipped (fraction unclipped 0 < target 0.5): S grows geometrically
    assert aggregated.central_dp.next_clip_norm == pytest.approx(np.exp(0.2 * 0.5))
    assert (await repo.policy("f")).clip_norm == pytest.approx(np.exp(0.2 * 0.5))


async def test_the_ledger_records_the_central_mechanisms_cumulative_epsilon():
    handlers = PrivacyHandlers(TwoAccountants())
    txs = InMemoryTransactions(InMemoryLedgerRepository())
    contributions = (ev.Contribution(update_id=uuid4(), participant_id="a", num_examples=1, sha256="a" * 64),)
    for round_number in (1, 2, 3):
        event = ev.RoundAggregated(
            source="aggregation", federation_id="f", round=round_number, closed_by="all_submitted",
            aggregate=ev.BlobRef(uri="memory://x", sha256="b" * 64, size=1), contributions=contributions,
            central_dp=ev.CentralDpApplied(noise_multiplier=3.0, clip_norm=1.0, noise_stddev=3.0, fraction_clipped=0.0,
                                           next_clip_norm=1.0),
        )
        async with txs.begin() as tx:
            await handlers.on_aggregated(event, tx)
    recorded = txs.repo.central[("f", 3)]
    independent = dp_accounting.pld.PLDAccountant()
    independent.compose(dp_accounting.GaussianDpEvent(3.0), 3)
    assert recorded.estimate.pld == pytest.approx(independent.get_epsilon(recorded.delta), rel=1e-6)
    assert recorded.epsilon == min(recorded.estimate.rdp, recorded.estimate.pld)
