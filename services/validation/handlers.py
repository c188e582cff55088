"""Validation's thin handlers: collect evaluations, decide when all are in or the deadline passed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import numpy as np

from fedstream.messaging.transaction import Transaction
from fedstream.storage import tensors
from fedstream.storage.blobs import BlobStore
from services.validation import domain
from services.validation.ports import Candidate, ValidationRepository
from schemas.base import derived_id, utcnow
from schemas.events import EvaluationReported, FederationCreated, ModelRejected, ModelValidated, RoundAggregated
from schemas.topics import VALIDATION

Tx = Transaction[ValidationRepository]
# Told of each verdict in the transaction that decides it (the alert processor's round outcomes).
VerdictObserver = Callable[[ModelValidated | ModelRejected, int, Tx], Awaitable[None]]


class ValidationHandlers:
    def __init__(
        self, blobs: BlobStore, clock: Callable[[], datetime] = utcnow, on_verdict: VerdictObserver | None = None
    ) -> None:
        self.blobs, self.clock, self.on_verdict = blobs, clock, on_verdict

    def table(self) -> dict[type, Callable]:
        return {
            FederationCreated: self.on_federation_created,
            RoundAggregated: self.on_aggregated,
            EvaluationReported: self.on_evaluation,
        }

    async def on_federation_created(self, event: FederationCreated, tx: Tx) -> None:
        await tx.repo.save_spec(event.federation_id, event.spec.validation, event.spec.training.evaluation_deadline_s)

    async def on_aggregated(self, event: RoundAggregated, tx: Tx) -> None:
        known = await tx.repo.spec(event.federation_id)
        if known is None:
            raise LookupError(f"aggregate for unknown federation {event.federation_id}")  # retried, then dead-lettered
        _, deadline_s = known
        await tx.repo.add_candidate(
            Candidate(
                event.federation_id, event.round, event.aggregate, event.contributions,
                self.clock() + timedelta(seconds=deadline_s), decided=False,
            )
        )
        await self.decide(event.federation_id, event.round, tx)

    async def on_evaluation(self, event: EvaluationReported, tx: Tx) -> None:
        if await tx.repo.add_evaluation(event):
            await self.decide(event.federation_id, event.round, tx)

    async def decide(self, federation_id: str, round_number: int, tx: Tx, deadline_passed: bool = False) -> None:
        candidate = await tx.repo.lock_candidate(federation_id, round_number)
        if candidate is None or candidate.decided:
            return
        sha = candidate.candidate.sha256
        everyone_reported = await tx.repo.reporters(federation_id, round_number, sha) >= candidate.expected_evaluators
        if not (everyone_reported or deadline_passed):
            return
        reports = await tx.repo.evaluations(federation_id, round_number, sha)
        spec, _ = await tx.repo.spec(federation_id)  # type: ignore[misc] - a candidate implies a spec
        metrics = domain.combine(reports)
        verdict = domain.judge(metrics, await self._finite(candidate), await tx.repo.accepted_scores(federation_id), spec)
        score = domain.score(metrics, spec) if metrics.evaluators else None
        await tx.repo.record_decision(federation_id, round_number, score, verdict.accepted)
        outcome = self._verdict_event(candidate, metrics, verdict)
        tx.emit(outcome)
        if self.on_verdict is not None:
            await self.on_verdict(outcome, len(candidate.contributions), tx)

    async def decide_overdue(self, transactions) -> None:  # noqa: ANN001 - a Transactions[ValidationRepository]
        """Timer: candidates whose evaluation deadline passed are judged on the reports that arrived."""
        async with transactions.begin() as tx:
            for federation_id, round_number in await tx.repo.due_candidates(self.clock()):
                await self.decide(federation_id, round_number, tx, deadline_passed=True)

    async def _finite(self, candidate: Candidate) -> bool:
        weights = tensors.from_bytes(await self.blobs.get(candidate.candidate))
        return all(np.isfinite(w).all() for w in weights.values())

    @staticmethod
    def _verdict_event(c: Candidate, metrics, verdict: domain.Verdict) -> ModelValidated | ModelRejected:  # noqa: ANN001
        event_id = derived_id(c.federation_id, c.round, "validation")
        if verdict.accepted:
            return ModelValidated(
                event_id=event_id, source=VALIDATION, federation_id=c.federation_id, round=c.round, candidate=c.candidate,
                metrics=metrics, contributions=c.contributions, converged=verdict.converged,
                target_reached=verdict.target_reached,
            )
        return ModelRejected(
            event_id=event_id, source=VALIDATION, federation_id=c.federation_id, round=c.round, candidate=c.candidate,
            gate=verdict.gate, detail=verdict.detail, metrics=metrics if metrics.evaluators else None,
        )
