import numpy as np

from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.storage.blobs import InMemoryBlobStore
from services.registry.fakes import InMemoryRegistryRepository
from services.registry.handlers import RegistryHandlers
from schemas import events as ev
from schemas.federation import parse_spec
from tests.unit.helpers import emitted

SPEC = parse_spec("""
federation_id: f
project_name: test
use_case: clinical_prediction
participants: [{participant_id: a, organisation: oa}, {participant_id: b, organisation: ob}]
model: {architecture: logistic, input_dim: 3}
training: {rounds: 2, quorum: 1}
""")
METRICS = ev.ModelMetrics(loss=0.3, accuracy=0.9, auc=0.95, num_examples=10, evaluators=2)


def initial(model_spec):
    return {"0.weight": np.zeros((1, model_spec.input_dim), np.float32), "0.bias": np.zeros(1, np.float32)}


async def run(handlers, txs, event):
    async with txs.begin() as tx:
        await handlers.table()[type(event)](event, tx)
    return emitted(txs.published)


def validated(round_number, candidate, converged=False):
    return ev.ModelValidated(source="validation", federation_id="f", round=round_number, candidate=candidate,
                             metrics=METRICS, contributions=(), converged=converged, target_reached=False)


async def setup():
    handlers = RegistryHandlers(InMemoryBlobStore(), initial)
    txs = InMemoryTransactions(InMemoryRegistryRepository())
    out = await run(handlers, txs, ev.CreateFederation(source="operator", federation_id="f", spec=SPEC, requested_by="op"))
    return handlers, txs, out


async def test_create_publishes_the_initial_model_and_opens_round_one_once():
    handlers, txs, out = await setup()
    created, opened = out
    assert isinstance(created, ev.FederationCreated) and [p.name for p in created.params] == ["0.bias", "0.weight"]
    assert isinstance(opened, ev.RoundOpened) and opened.round == 1 and opened.global_model == created.initial_model
    again = await run(handlers, txs, ev.CreateFederation(source="operator", federation_id="f", spec=SPEC, requested_by="op"))
    assert len(again) == 2  # nothing new


async def test_a_validated_model_is_released_and_the_next_round_starts_from_it():
    handlers, txs, out = await setup()
    candidate = ev.BlobRef(uri="memory://c", sha256="c" * 64, size=10)
    released, opened = (await run(handlers, txs, validated(1, candidate)))[2:]
    assert isinstance(released, ev.ModelReleased) and released.model_version == 1 and released.model == candidate
    assert opened.round == 2 and opened.global_model == candidate and opened.model_version == 1


async def test_the_round_budget_completes_the_federation_and_late_outcomes_change_nothing():
    handlers, txs, _ = await setup()
    c1 = ev.BlobRef(uri="memory://c1", sha256="1" * 64, size=10)
    await run(handlers, txs, validated(1, c1))
    rejected = ev.ModelRejected(source="validation", federation_id="f", round=2, candidate=c1,
                                gate=ev.ValidationGate.REGRESSION, detail="worse")
    out = await run(handlers, txs, rejected)
    completed = out[-1]
    assert isinstance(completed, ev.FederationCompleted)
    assert completed.reason is ev.CompletionReason.ROUND_BUDGET and completed.final_model_version == 1
    assert len(await run(handlers, txs, validated(2, c1))) == len(out)


async def test_convergence_stops_early():
    handlers, txs, _ = await setup()
    out = await run(handlers, txs, validated(1, ev.BlobRef(uri="memory://c", sha256="c" * 64, size=10), converged=True))
    assert isinstance(out[-1], ev.FederationCompleted) and out[-1].reason is ev.CompletionReason.CONVERGED


def exhausted(participant):
    from uuid import uuid4

    return ev.BudgetExhausted(source="privacy-accounting", federation_id="f", update_id=uuid4(), participant_id=participant,
                              round=1, dataset_id=None, reason=ev.BudgetReason.EXHAUSTED, detail="spent",
                              epsilon_spent=0.5, budget_epsilon=0.5, delta=1e-5)


async def test_a_participant_whose_budget_is_spent_is_not_selected_again():
    handlers, txs, _ = await setup()
    await run(handlers, txs, exhausted("a"))
    opened = (await run(handlers, txs, validated(1, ev.BlobRef(uri="memory://c", sha256="c" * 64, size=10))))[-1]
    assert isinstance(opened, ev.RoundOpened) and opened.participants == ("b",)


async def test_the_federation_stops_when_too_few_participants_have_budget_left():
    handlers, txs, _ = await setup()
    for participant in ("a", "b"):
        await run(handlers, txs, exhausted(participant))
    completed = (await run(handlers, txs, validated(1, ev.BlobRef(uri="memory://c", sha256="c" * 64, size=10))))[-1]
    assert isinstance(completed, ev.FederationCompleted)
    assert completed.reason is ev.CompletionReason.PRIVACY_BUDGETS_EXHAUSTED
