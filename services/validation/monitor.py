"""The alert stream processor's thin handlers: fold each event into windowed health state, run the rules
of ``health``, emit what they raise, and record the round and participant time series.

Everything happens in the consumer's transaction, with the inbox: a redelivered event neither counts
twice in a window nor raises twice. That is why this is our consumer loop and not faust-streaming —
faust's tables live in its own changelog topic and RocksDB, outside the PostgreSQL transaction that
makes our handlers exactly-once, and it would be a second stream runtime to operate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from fedstream.messaging.transaction import Transaction
from fedstream.security.message_auth import Refused
from services.validation import health as rules
from services.validation.health import AlertPolicy, FederationHealth
from services.validation.ports import HealthRepository, ParticipantPoint, RoundPoint, ValidationRepository
from schemas.alerts import AlertRaised
from schemas.base import Event, utcnow
from schemas.events import (
    EvaluationReported, FederationCompleted, FederationCreated, ModelRejected, ModelValidated, ParticipantHeartbeat,
    PrivacyCharged, RoundFailed, RoundOpened, UpdateAccepted, UpdateRejected,
)
from schemas.topics import PRIVACY

Tx = Transaction[HealthRepository]


class HealthMonitor:
    def __init__(self, policy: AlertPolicy = AlertPolicy(), clock: Callable[[], datetime] = utcnow) -> None:
        self.policy, self.clock = policy, clock
        # Alerts known to be claimed (committed): a condition that keeps holding — every refusal of a flood
        # beyond the error-rate threshold — costs no database round trip to learn it was raised already.
        self._claimed: set[UUID] = set()

    def table(self) -> dict[type, Callable]:
        return {
            FederationCreated: self.on_federation_created,
            RoundOpened: self.on_round_opened,
            FederationCompleted: self.on_federation_completed,
            UpdateAccepted: self.on_accepted,
            UpdateRejected: self.on_rejected,
            PrivacyCharged: self.on_charged,
            RoundFailed: self.on_round_failed,
            EvaluationReported: self.on_evaluation,
            ParticipantHeartbeat: self.on_heartbeat,
        }

    # --- federation and rounds -------------------------------------------------------------------------

    async def on_federation_created(self, event: FederationCreated, tx: Tx) -> None:
        spec = event.spec
        config = _training_config(spec.training.quorum, spec.training.local_epochs, spec.training.learning_rate,
                                  spec.training.batch_size)
        await tx.repo.save_health(FederationHealth(
            event.federation_id, spec.training.rounds, spec.validation.target_metric, spec.privacy.budget_epsilon, config,
        ))
        await self._raise(tx, rules.configuration_change(event.federation_id, None, config, None, event.time))

    async def on_round_opened(self, event: RoundOpened, tx: Tx) -> None:
        await tx.repo.open_round(event.federation_id, event.round, event.time)
        h = await tx.repo.health(event.federation_id)
        if h is None:
            return  # a federation created before this processor existed: nothing to compare with
        config = _training_config(event.quorum, event.local_epochs, event.learning_rate, event.batch_size)
        await self._raise(tx, rules.configuration_change(event.federation_id, h.config, config, event.round, event.time))
        await tx.repo.save_health(replace(h, config=config))

    async def on_federation_completed(self, event: FederationCompleted, tx: Tx) -> None:
        h = await tx.repo.health(event.federation_id)
        if h is not None:
            await tx.repo.save_health(replace(h, completed=True))  # its participants leaving is no news

    async def on_round_failed(self, event: RoundFailed, tx: Tx) -> None:
        await self._round_outcome(event.federation_id, event.round, "failed", event.received, None, event.time, tx)

    async def on_verdict(self, event: ModelValidated | ModelRejected, contributions: int, tx: Transaction) -> None:
        """Called by validation's own handler, in the transaction that decides the verdict."""
        outcome = "validated" if isinstance(event, ModelValidated) else "rejected"
        # Decided now (validation's clock): the verdict event's own stamp is when it was built, a moment earlier.
        await self._round_outcome(event.federation_id, event.round, outcome, contributions, event.metrics, self.clock(), tx)

    async def _round_outcome(self, federation_id: str, round_number: int, outcome: str, contributions: int, metrics,  # noqa: ANN001
                             at: datetime, tx: Transaction) -> None:
        opened = await tx.repo.round_opened_at(federation_id, round_number)
        await tx.repo.add_round_point(RoundPoint(
            at, federation_id, round_number, outcome, contributions,
            (at - opened).total_seconds() if opened else None,
            metrics.loss if metrics else None, metrics.accuracy if metrics else None, metrics.auc if metrics else None,
        ))
        h = await tx.repo.health(federation_id)
        if h is None:
            return
        h = rules.after_round_outcome(h, round_number, released=outcome == "validated")
        await tx.repo.save_health(h)
        if outcome != "validated":
            await self._raise(tx, rules.convergence_failure(h, round_number, at, self.policy))
            return
        scores = await self._scores(federation_id, tx)
        await self._raise(tx, rules.round_completed(federation_id, round_number, scores[-1] if scores else None, at))
        await self._raise(tx, rules.slow_convergence(h, round_number, scores, at, self.policy))

    @staticmethod
    async def _scores(federation_id: str, tx: Transaction) -> list[float]:
        repo: ValidationRepository = tx.repo  # the store is both repositories
        return await repo.accepted_scores(federation_id)

    # --- participants -------------------------------------------------------------------------------------

    async def on_accepted(self, event: UpdateAccepted, tx: Tx) -> None:
        point = ParticipantPoint(event.time, event.federation_id, event.participant_id, event.round, "accepted",
                                 num_examples=event.num_examples, train_loss=event.train_loss)
        await self._admission(point, None, event.update_id, tx)

    async def on_rejected(self, event: UpdateRejected, tx: Tx) -> None:
        point = ParticipantPoint(event.time, event.federation_id, event.participant_id, event.round, "rejected",
                                 reason=event.reason.value)
        await self._admission(point, event.reason, None, tx)

    async def _admission(self, point: ParticipantPoint, reason, update_id, tx: Tx) -> None:  # noqa: ANN001
        window = rules.window_of(point.time, self.policy.window_s)
        w = await tx.repo.record_admission(point, window, rules.count_admission(reason, self.policy), update_id)
        await self._raise(tx, rules.security_breach(w, point.time, self.policy))
        await self._raise(tx, rules.high_error_rate(w, point.time, self.policy))

    async def on_charged(self, event: PrivacyCharged, tx: Tx) -> None:
        point = ParticipantPoint(event.time, event.federation_id, event.participant_id, event.round, "charged",
                                 num_examples=event.num_examples, epsilon=event.epsilon)
        latency, federation_budget = await tx.repo.record_charge(point, event.update_id)
        if latency is not None:
            await self._raise(tx, rules.resource_saturation(event.federation_id, PRIVACY, latency, event.time, self.policy))
        budget = event.budget_epsilon if event.budget_epsilon is not None else federation_budget
        await self._raise(tx, rules.privacy_violation(
            event.federation_id, event.participant_id, event.round, event.epsilon, budget, event.time, self.policy,
        ))

    async def on_evaluation(self, event: EvaluationReported, tx: Tx) -> None:
        await tx.repo.add_participant_point(ParticipantPoint(
            event.time, event.federation_id, event.participant_id, event.round, "evaluated",
            num_examples=event.num_examples, loss=event.loss, accuracy=event.accuracy,
        ))

    async def on_refused(self, event: Event, refused: Refused, tx: Tx) -> None:
        """Called by the sender check for a message it refused (no handler saw it). A refused evaluation report
        is a point of the participant series, and a hostile one counts toward a security breach like a hostile
        update. A refused heartbeat is only logged and counted there: liveness decides nothing."""
        if not isinstance(event, EvaluationReported):
            return
        at = self.clock()  # processing time: a forger chooses the event's own time (and so its window)
        point = ParticipantPoint(at, event.federation_id, event.participant_id, event.round, "refused",
                                 reason=refused.reason.value)
        window = rules.window_of(at, self.policy.window_s)
        w = await tx.repo.record_admission(point, window, rules.count_refusal(refused.reason.value, self.policy), None)
        await self._raise(tx, rules.security_breach(w, at, self.policy))

    async def on_heartbeat(self, event: ParticipantHeartbeat, tx: Tx) -> None:
        session = await tx.repo.heartbeat(event.federation_id, event.participant_id, event.time, event.ttl_s)
        if session is not None:
            await self._raise(tx, rules.participant_joined(event.federation_id, event.participant_id, session, event.time))

    async def expire_participants(self, transactions) -> None:  # noqa: ANN001 - a Transactions[HealthRepository]
        """Timer: participants whose heartbeat expired have left (by processing time: silence has no event)."""
        async with transactions.begin() as tx:
            now = self.clock()
            for d in await tx.repo.expire(now):
                await self._raise(tx, rules.participant_left(d.federation_id, d.participant_id, d.session, d.last_seen,
                                                             d.ttl_s, now))

    async def _raise(self, tx: Transaction, alert: AlertRaised | None) -> None:
        if alert is None or alert.event_id in self._claimed:
            return
        if await tx.repo.claim_alert(alert):
            tx.emit(alert)
        tx.after_commit(lambda: self._remember(alert.event_id))

    def _remember(self, alert_id: UUID) -> None:
        if len(self._claimed) >= 10_000:  # bounded: forgetting only costs a round trip that answers "claimed"
            self._claimed.clear()
        self._claimed.add(alert_id)


def _training_config(quorum: int, local_epochs: int, learning_rate: float, batch_size: int) -> dict[str, float]:
    return {"quorum": quorum, "local_epochs": local_epochs, "learning_rate": learning_rate, "batch_size": batch_size}
