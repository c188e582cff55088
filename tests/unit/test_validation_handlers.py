from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np

from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.storage.blobs import InMemoryBlobStore
from services.validation.fakes import InMemoryValidationRepository
from services.validation.handlers import ValidationHandlers
from schemas import events as ev
from schemas.federation import parse_spec
from tests.unit.helpers import emitted, put_weights, weights

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = parse_spec("""
federation_id: f
project_name: test
use_case: clinical_prediction
participants: [{participant_id: a, organisation: oa}, {participant_id: b, organisation: ob}]
model: {architecture: logistic, input_dim: 3}
training: {evaluation_deadline_s: 10}
validation: {metric: auc, min_metric: 0.6}
""")


class Harness:
    def __init__(self):
        self.now, self.blobs = NOW, InMemoryBlobStore()
        self.handlers = ValidationHandlers(self.blobs, clock=lambda: self.now)
        self.txs = InMemoryTransactions(InMemoryValidationRepository())

    async def deliver(self, event):
        async with self.txs.begin() as tx:
            await self.handlers.table()[type(event)](event, tx)
        return emitted(self.txs.published)

    async def candidate(self, value=0.5):
        await self.deliver(ev.FederationCreated(source="registry", federation_id="f", spec=SPEC, params=(),
                                                initial_model=await put_weights(self.blobs, weights())))
        ref = await put_weights(self.blobs, weights(value))
        contributions = tuple(ev.Contribution(update_id=uuid4(), participant_id=p, num_examples=10, sha256=ref.sha256) for p in "ab")
        await self.deliver(ev.RoundAggregated(source="aggregation", federation_id="f", round=1, aggregate=ref,
                                              contributions=contributions, closed_by="all_submitted"))
        return ref

    def report(self, participant, ref, auc=0.8, n=10):
        return ev.EvaluationReported(source="p", federation_id="f", participant_id=participant, round=1,
                                     candidate_sha256=ref.sha256, num_examples=n, loss=0.4, accuracy=0.7, auc=auc)


async def test_the_model_is_validated_once_every_contributor_reported():
    h = Harness()
    ref = await h.candidate()
    assert await h.deliver(h.report("a", ref, auc=0.9, n=30)) == []
    [validated] = await h.deliver(h.report("b", ref, auc=0.7, n=10))
    assert isinstance(validated, ev.ModelValidated) and validated.metrics.auc == 0.85 and validated.metrics.evaluators == 2


async def test_after_the_deadline_the_reports_that_arrived_decide():
    h = Harness()
    ref = await h.candidate()
    await h.deliver(h.report("a", ref, auc=0.5))
    await h.handlers.decide_overdue(h.txs)
    assert emitted(h.txs.published) == []
    h.now = NOW + timedelta(seconds=11)
    await h.handlers.decide_overdue(h.txs)
    [rejected] = emitted(h.txs.published)
    assert isinstance(rejected, ev.ModelRejected) and rejected.gate is ev.ValidationGate.BELOW_THRESHOLD


async def test_a_candidate_with_non_finite_weights_is_rejected():
    h = Harness()
    ref = await h.candidate(value=np.inf)
    await h.deliver(h.report("a", ref))
    [rejected] = await h.deliver(h.report("b", ref))
    assert rejected.gate is ev.ValidationGate.NON_FINITE_WEIGHTS


async def test_reports_about_another_candidate_do_not_count():
    h = Harness()
    ref = await h.candidate()
    other = ev.BlobRef(uri="memory://other", sha256="e" * 64, size=1)
    await h.deliver(h.report("a", ref))
    assert await h.deliver(h.report("b", other)) == []
