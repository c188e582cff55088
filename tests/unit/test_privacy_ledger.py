"""The privacy-accounting service with its in-memory fakes: recomputed ε, at most once, never overspent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import dp_accounting
import numpy as np
import pytest
from dp_accounting.pld import PLDAccountant
from opacus.accountants import RDPAccountant

from fedstream.messaging.codec import encode
from fedstream.messaging.consumer import BatchProcessor, Dispatcher
from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.privacy.accountant import PLD_DISCRETISATION, RDP_ORDERS, TwoAccountants
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from services.aggregation.fakes import InMemoryAggregationRepository
from services.aggregation.handlers import AggregationHandlers
from services.privacy_accounting.fakes import InMemoryLedgerRepository
from services.privacy_accounting.handlers import PrivacyHandlers
from schemas import events as ev
from schemas.federation import CryptoApproach, DataSensitivity, DpSpec, ModelSpec, ParticipantSpec, PrivacySpec, FederationSpec, UseCase
from schemas.topics import ADMISSIONS
from tests.unit.helpers import emitted, put_weights, weights

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SIGMA, Q, STEPS = 4.0, 0.1, 10
BLOB = ev.BlobRef(uri="memory://u", sha256="a" * 64, size=1)


def spec(epsilon: float | None = None, crypto: CryptoApproach = CryptoApproach.DP) -> FederationSpec:
    return FederationSpec(
        federation_id="f", project_name="p", use_case=UseCase.CLINICAL_PREDICTION,
        participants=(ParticipantSpec(participant_id="a", organisation="o"), ParticipantSpec(participant_id="b", organisation="o")),
        model=ModelSpec(architecture="logistic", input_dim=3), crypto=crypto, dp=DpSpec(),
        privacy=PrivacySpec(data_sensitivity=DataSensitivity.AGGREGATE, epsilon=epsilon, delta=1e-5),
    )


def created(s: FederationSpec) -> ev.FederationCreated:
    return ev.FederationCreated(source="registry", federation_id=s.federation_id, spec=s, params=(), initial_model=BLOB)


def params(sigma: float = SIGMA, dataset: str = "d1") -> ev.DpParameters:
    return ev.DpParameters(noise_multiplier=sigma, sample_rate=Q, steps=STEPS, clipping_norm=1.0, delta=1e-5, dataset_id=dataset)


def accepted(round_number: int, participant: str = "a", privacy: ev.DpParameters | None = None, update: ev.BlobRef = BLOB,
             federation: str = "f", n: int = 10) -> ev.UpdateAccepted:
    return ev.UpdateAccepted(source="ingestion", federation_id=federation, update_id=uuid4(), participant_id=participant,
                             round=round_number, update=update, num_examples=n, train_loss=0.5, privacy=privacy,
                             time=NOW + timedelta(seconds=round_number))


def service() -> tuple[BatchProcessor, InMemoryTransactions]:
    txs = InMemoryTransactions(InMemoryLedgerRepository(), consumer="privacy-accounting")
    return BatchProcessor(txs, Dispatcher(PrivacyHandlers(TwoAccountants()).table())), txs


async def deliver(processor: BatchProcessor, *events: ev.Event) -> None:
    await processor.process([encode(e, "topic") for e in events])


async def test_ledger_epsilon_equals_each_library_called_directly():
    processor, txs = service()
    await deliver(processor, created(spec()), *(accepted(r, privacy=params()) for r in range(1, 6)))
    charges = [e for e in emitted(txs.published) if isinstance(e, ev.PrivacyCharged)]
    assert len(charges) == 5
    last = txs.repo.charges[charges[-1].update_id]

    rdp = RDPAccountant()
    for _ in range(STEPS * 5):
        rdp.step(noise_multiplier=SIGMA, sample_rate=Q)  # one DP-SGD step at a time, composed by Opacus itself
    assert last.estimate.rdp == pytest.approx(rdp.get_epsilon(1e-5, alphas=list(RDP_ORDERS)), rel=1e-6)

    pld = PLDAccountant(dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE, value_discretization_interval=PLD_DISCRETISATION)
    pld.compose(dp_accounting.PoissonSampledDpEvent(Q, dp_accounting.GaussianDpEvent(SIGMA)), STEPS * 5)
    assert last.estimate.pld == pytest.approx(pld.get_epsilon(1e-5), rel=1e-6)

    assert charges[-1].epsilon == min(last.estimate.rdp, last.estimate.pld) == last.epsilon
    assert [c.epsilon for c in charges] == sorted(c.epsilon for c in charges)  # cumulative: it only grows
    assert charges[-1].privacy == params() and charges[-1].budget_epsilon == 1.0


async def test_duplicate_and_replayed_deliveries_leave_epsilon_unchanged():
    processor, txs = service()
    first = accepted(1, privacy=params())
    await deliver(processor, created(spec()), first, first)  # a duplicate inside one batch
    await deliver(processor, first)  # redelivered after a commit
    await deliver(processor, first.model_copy(update={"event_id": uuid4()}))  # replayed under a new event id
    before = txs.repo.charges[first.update_id].epsilon
    await deliver(processor, accepted(2, privacy=params()))
    charges = [e for e in emitted(txs.published) if isinstance(e, ev.PrivacyCharged)]
    assert len(charges) == 2 and charges[0].epsilon == before
    # the second charge is exactly two rounds' worth, not three
    assert charges[1].epsilon == pytest.approx(TwoAccountants().estimate([params_mechanism()] * 2, 1e-5).epsilon, rel=1e-12)


def params_mechanism():
    from services.privacy_accounting.domain import mechanism_of

    return mechanism_of(params())


async def test_an_update_that_would_cross_the_budget_is_refused_and_never_aggregated():
    blobs = InMemoryBlobStore()
    s = spec(epsilon=0.3)
    processor, txs = service()
    refs = {pid: await put_weights(blobs, weights(v)) for pid, v in (("a", 1.0), ("b", 100.0))}
    noisy, leaky = params(sigma=20.0), params(sigma=2.5)  # b's mechanism alone (ε ≈ 0.57) is over ε = 0.3
    await deliver(processor, created(s), accepted(1, "a", noisy, refs["a"], n=10), accepted(1, "b", leaky, refs["b"], n=30))

    out = emitted(txs.published)
    [charged] = [e for e in out if isinstance(e, ev.PrivacyCharged)]
    [refused] = [e for e in out if isinstance(e, ev.BudgetExhausted)]
    assert charged.participant_id == "a" and refused.participant_id == "b"
    assert refused.reason is ev.BudgetReason.EXHAUSTED and refused.epsilon_requested > refused.budget_epsilon == 0.3
    assert refused.epsilon_spent == 0.0 and "over the budget" in refused.detail
    assert set(txs.repo.charges) == {charged.update_id}  # nothing spent for the refused update

    # Downstream: aggregation only ever sees what the ledger charged.
    aggregation = AggregationHandlers(blobs, lambda: NOW)
    atx = InMemoryTransactions(InMemoryAggregationRepository(), consumer="aggregation")
    opened = ev.RoundOpened(source="registry", federation_id="f", round=1, model_version=0, global_model=await put_weights(blobs, weights()),
                            participants=("a", "b"), quorum=1, deadline=NOW + timedelta(seconds=30), local_epochs=1,
                            learning_rate=0.1, batch_size=8)
    aggregator = BatchProcessor(atx, Dispatcher(aggregation.table()))
    await deliver(aggregator, opened, *[e for e in out if isinstance(e, (ev.PrivacyCharged, ev.BudgetExhausted))])
    await aggregation.close_due_rounds(atx)
    assert not [e for e in emitted(atx.published) if isinstance(e, ev.RoundAggregated)]  # still waiting for b…
    aggregation.clock = lambda: NOW + timedelta(minutes=1)
    await aggregation.close_due_rounds(atx)
    [aggregated] = [e for e in emitted(atx.published) if isinstance(e, ev.RoundAggregated)]
    assert [c.participant_id for c in aggregated.contributions] == ["a"]
    result = tensors.from_bytes(await blobs.get(aggregated.aggregate))
    assert np.allclose(result["0.weight"], 1.0)  # b's 100.0 never reached the aggregate


async def test_budget_composes_across_rounds_until_the_next_update_would_overspend():
    processor, txs = service()
    # σ = 10: cumulative ε ≈ 0.10, 0.15, 0.18, 0.21 — the fourth round would cross 0.2
    await deliver(processor, created(spec(epsilon=0.2)), *(accepted(r, privacy=params(sigma=10.0)) for r in range(1, 7)))
    out = emitted(txs.published)
    charged = [e for e in out if isinstance(e, ev.PrivacyCharged)]
    refused = [e for e in out if isinstance(e, ev.BudgetExhausted)]
    assert len(charged) == 3 and len(refused) == 3 and max(c.epsilon for c in charged) <= 0.2
    assert refused[0].round == 4 and refused[0].epsilon_spent == pytest.approx(charged[-1].epsilon)


async def test_budgets_are_per_participant_and_dataset():
    processor, txs = service()
    await deliver(processor, created(spec()), accepted(1, "a", params(dataset="d1")), accepted(1, "a", params(dataset="d2")),
                  accepted(1, "b", params(dataset="d1")))
    charges = [e for e in emitted(txs.published) if isinstance(e, ev.PrivacyCharged)]
    assert len({c.epsilon for c in charges}) == 1  # three first charges on three separate subjects


async def test_a_dp_federation_refuses_updates_without_dp_parameters_and_plaintext_ones_charge_no_epsilon():
    processor, txs = service()
    await deliver(processor, created(spec()), accepted(1, "a"))
    [refused] = emitted(txs.published)
    assert isinstance(refused, ev.BudgetExhausted) and refused.reason is ev.BudgetReason.MISSING_PARAMETERS

    plain_processor, plain = service()
    await deliver(plain_processor, created(spec(crypto=CryptoApproach.NONE)), accepted(1, "a"))
    [charged] = emitted(plain.published)
    assert isinstance(charged, ev.PrivacyCharged) and charged.epsilon is None and charged.privacy is None


async def test_before_its_spec_arrives_an_update_is_held_to_the_strictest_budget():
    processor, txs = service()
    await deliver(processor, accepted(1, privacy=params(sigma=2.0)))  # ε ≈ 0.8: fine at 1.0, not at 0.5
    [refused] = emitted(txs.published)
    assert isinstance(refused, ev.BudgetExhausted) and refused.budget_epsilon == 0.5
