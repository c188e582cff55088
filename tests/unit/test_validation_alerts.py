"""The alert stream processor: every rule fires on a synthetic stream of events and stays silent on a
healthy one; a condition raises once per window; a redelivered event changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from fedstream.messaging.consumer import Dispatcher
from fedstream.messaging.transaction import InMemoryTransactions
from fedstream.storage.blobs import InMemoryBlobStore
from services.validation.bootstrap import merge
from services.validation.fakes import InMemoryValidationStore
from services.validation.handlers import ValidationHandlers
from services.validation.health import AlertPolicy, window_of
from services.validation.monitor import HealthMonitor
from schemas import events as ev
from schemas.alerts import AlertKind, AlertRaised, AlertSeverity
from schemas.federation import parse_spec
from tests.unit.helpers import emitted, put_weights, weights

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
K = AlertKind
R = ev.RejectionReason
POLICY = AlertPolicy(window_s=300, security_burst=3, error_rate=0.5, error_min_updates=4, failure_streak=3,
                     slow_convergence_rounds=3, saturation_latency_s=30)


def spec(target: float | None = None, rounds: int = 10, crypto: str = "none"):
    target_line = f", target_metric: {target}" if target is not None else ""
    return parse_spec(f"""
federation_id: f
project_name: alerts
use_case: clinical_prediction
participants: [{{participant_id: a, organisation: oa}}, {{participant_id: b, organisation: ob}}]
model: {{architecture: logistic, input_dim: 3}}
training: {{rounds: {rounds}, quorum: 2, learning_rate: 0.1, evaluation_deadline_s: 10}}
validation: {{metric: auc, min_metric: 0.6, max_regression: 1.0, convergence_threshold: 0.0, patience: 50{target_line}}}
privacy: {{data_sensitivity: patient_level}}
""")


class Stream:
    """Validation's handlers and the monitor, merged as the service runs them, on in-memory stores."""

    def __init__(self, policy: AlertPolicy = POLICY) -> None:
        self.now, self.blobs = T0, InMemoryBlobStore()
        self.store = InMemoryValidationStore()
        self.monitor = HealthMonitor(policy, clock=lambda: self.now)
        self.validation = ValidationHandlers(self.blobs, clock=lambda: self.now, on_verdict=self.monitor.on_verdict)
        self.dispatcher = Dispatcher(merge(self.validation.table(), self.monitor.table()))
        self.txs = InMemoryTransactions(self.store, "validation")

    async def deliver(self, *events: ev.Event) -> None:
        for event in events:
            async with self.txs.begin() as tx:
                await self.dispatcher.dispatch(event, tx)  # through the inbox, as the consumer does

    def alerts(self, kind: AlertKind | None = None) -> list[AlertRaised]:
        return [e for e in emitted(self.txs.published) if isinstance(e, AlertRaised) and kind in (None, e.kind)]

    async def create(self, **kwargs) -> None:
        await self.deliver(ev.FederationCreated(source="registry", federation_id="f", spec=spec(**kwargs), params=(),
                                                initial_model=await put_weights(self.blobs, weights()), time=self.now))

    def opened(self, round_number: int, learning_rate: float = 0.1) -> ev.RoundOpened:
        return ev.RoundOpened(
            source="registry", federation_id="f", round=round_number, model_version=round_number - 1,
            global_model=ev.BlobRef(uri="memory://m", sha256="0" * 64, size=1), participants=("a", "b"), quorum=2,
            deadline=self.now + timedelta(seconds=60), local_epochs=1, learning_rate=learning_rate, batch_size=32,
            time=self.now,
        )

    async def round(self, round_number: int, auc: float) -> None:
        """A round through validation's real path: aggregate, both contributors evaluate it, verdict."""
        ref = await put_weights(self.blobs, weights(0.1 * round_number))
        contributions = tuple(ev.Contribution(update_id=uuid4(), participant_id=p, num_examples=10, sha256=ref.sha256)
                              for p in "ab")
        await self.deliver(ev.RoundAggregated(source="aggregation", federation_id="f", round=round_number, aggregate=ref,
                                              contributions=contributions, closed_by="all_submitted", time=self.now))
        for p in "ab":
            await self.deliver(ev.EvaluationReported(
                source=p, federation_id="f", participant_id=p, round=round_number, candidate_sha256=ref.sha256,
                num_examples=10, loss=0.4, accuracy=0.7, auc=auc, time=self.now,
            ))

    def failed(self, round_number: int) -> ev.RoundFailed:
        return ev.RoundFailed(source="aggregation", federation_id="f", round=round_number, reason="quorum_not_met",
                              received=1, quorum=2, time=self.now)


def rejected(participant: str, reason: ev.RejectionReason, at: datetime) -> ev.UpdateRejected:
    return ev.UpdateRejected(source="ingestion", federation_id="f", update_id=uuid4(), participant_id=participant, round=1,
                             reason=reason, detail="", time=at)


def accepted(participant: str, at: datetime, update_id=None) -> ev.UpdateAccepted:  # noqa: ANN001
    return ev.UpdateAccepted(source="ingestion", federation_id="f", update_id=update_id or uuid4(),
                             participant_id=participant, round=1,
                             update=ev.BlobRef(uri="memory://u", sha256="1" * 64, size=1), num_examples=10,
                             train_loss=0.5, time=at)


def charged(participant: str, at: datetime, update_id=None, epsilon=None, budget=None) -> ev.PrivacyCharged:  # noqa: ANN001
    return ev.PrivacyCharged(source="privacy-accounting", federation_id="f", update_id=update_id or uuid4(),
                             participant_id=participant, round=1,
                             update=ev.BlobRef(uri="memory://u", sha256="1" * 64, size=1), num_examples=10,
                             epsilon=epsilon, budget_epsilon=budget, time=at)


def heartbeat(participant: str, at: datetime, ttl_s: float = 15) -> ev.ParticipantHeartbeat:
    return ev.ParticipantHeartbeat(source=participant, federation_id="f", participant_id=participant, ttl_s=ttl_s, time=at)


def secs(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


# --- critical ------------------------------------------------------------------------------------------


async def test_a_burst_of_suspicious_rejections_from_one_sender_is_a_security_breach_raised_once():
    s = Stream()
    await s.deliver(*(rejected("mallory", reason, secs(i)) for i, reason in
                      enumerate([R.HASH_MISMATCH, R.NOT_ENROLLED, R.HASH_MISMATCH, R.HASH_MISMATCH])))
    [breach] = s.alerts(K.SECURITY_BREACH)
    assert (breach.severity, breach.subject, breach.value, breach.threshold) == (AlertSeverity.CRITICAL, "mallory", 3, 3)
    assert (breach.window_start, breach.window_end) == (T0, secs(300))


async def test_suspicious_rejections_below_the_burst_or_split_across_windows_or_benign_reasons_are_silent():
    s = Stream()
    await s.deliver(rejected("mallory", R.HASH_MISMATCH, secs(290)), rejected("mallory", R.HASH_MISMATCH, secs(299)),
                    rejected("mallory", R.HASH_MISMATCH, secs(301)),  # the next window
                    rejected("eve", R.HASH_MISMATCH, secs(5)),  # another sender
                    *(rejected("a", R.STALE_ROUND, secs(i)) for i in range(3)))  # late, not hostile
    assert s.alerts(K.SECURITY_BREACH) == []


async def test_the_security_rule_takes_its_set_of_reasons():
    s = Stream(AlertPolicy(security_reasons=frozenset({R.SHAPE_MISMATCH}), security_burst=2))
    await s.deliver(*(rejected("a", R.HASH_MISMATCH, secs(i)) for i in range(3)))
    assert s.alerts(K.SECURITY_BREACH) == []
    await s.deliver(*(rejected("a", R.SHAPE_MISMATCH, secs(10 + i)) for i in range(2)))
    assert [a.subject for a in s.alerts(K.SECURITY_BREACH)] == ["a"]


async def test_a_charge_above_the_budget_is_a_privacy_violation():
    s = Stream()
    await s.create()
    await s.deliver(charged("a", secs(1), epsilon=0.62, budget=0.5))
    [violation] = s.alerts(K.PRIVACY_VIOLATION)
    assert (violation.severity, violation.subject, violation.value, violation.threshold) == (
        AlertSeverity.CRITICAL, "a", 0.62, 0.5)


async def test_the_federation_budget_applies_when_the_charge_does_not_state_one():
    s = Stream()
    await s.create()  # patient-level data: ε ≤ 0.5
    await s.deliver(charged("a", secs(1), epsilon=0.51))
    assert [a.value for a in s.alerts(K.PRIVACY_VIOLATION)] == [0.51]


async def test_charges_within_the_budget_and_charges_without_dp_are_silent():
    s = Stream()
    await s.create()
    await s.deliver(charged("a", secs(1), epsilon=0.3, budget=0.5), charged("a", secs(2), epsilon=0.5, budget=0.5),
                    charged("b", secs(3)))
    assert s.alerts(K.PRIVACY_VIOLATION) == []


async def test_consecutive_failed_or_rejected_rounds_are_a_convergence_failure():
    s = Stream()
    await s.create()
    await s.deliver(s.failed(1))
    await s.round(2, auc=0.4)  # below min_metric 0.6: rejected
    assert s.alerts(K.CONVERGENCE_FAILURE) == []
    await s.deliver(s.failed(3))
    [failure] = s.alerts(K.CONVERGENCE_FAILURE)
    assert (failure.severity, failure.round, failure.value) == (AlertSeverity.CRITICAL, 3, 3)
    await s.deliver(s.failed(4))  # the same streak: not raised again
    assert len(s.alerts(K.CONVERGENCE_FAILURE)) == 1


async def test_a_validated_round_breaks_the_failure_streak():
    s = Stream()
    await s.create()
    await s.deliver(s.failed(1), s.failed(2))
    await s.round(3, auc=0.8)
    await s.deliver(s.failed(4), s.failed(5))
    assert s.alerts(K.CONVERGENCE_FAILURE) == []


# --- warning -------------------------------------------------------------------------------------------


async def test_most_of_a_participants_updates_rejected_in_a_window_is_a_high_error_rate():
    s = Stream()
    await s.deliver(accepted("a", secs(1)), *(rejected("a", R.STALE_ROUND, secs(2 + i)) for i in range(3)),
                    rejected("a", R.STALE_ROUND, secs(9)))
    [high] = s.alerts(K.HIGH_ERROR_RATE)
    assert (high.severity, high.subject, high.value, high.threshold) == (AlertSeverity.WARNING, "a", 0.75, 0.5)


async def test_a_condition_that_keeps_holding_is_looked_up_once_after_its_alert_is_claimed():
    """A flood of refusals beyond the error-rate threshold must not cost a database round trip each."""
    s = Stream()
    claims = []
    claim = s.store.claim_alert

    async def counted(alert):
        claims.append(alert.kind)
        return await claim(alert)

    s.store.claim_alert = counted
    await s.deliver(accepted("a", secs(1)), *(rejected("a", R.STALE_ROUND, secs(2 + i)) for i in range(20)))
    assert len(s.alerts(K.HIGH_ERROR_RATE)) == 1
    assert claims.count(K.HIGH_ERROR_RATE) == 1  # then known claimed: no further lookups this window
    await s.deliver(rejected("a", R.STALE_ROUND, secs(POLICY.window_s + 5)), rejected("a", R.STALE_ROUND, secs(POLICY.window_s + 6)),
                    rejected("a", R.STALE_ROUND, secs(POLICY.window_s + 7)), rejected("a", R.STALE_ROUND, secs(POLICY.window_s + 8)))
    assert len(s.alerts(K.HIGH_ERROR_RATE)) == 2  # a new window is a new condition


async def test_a_few_rejections_among_many_or_too_few_updates_are_not_a_rate():
    s = Stream()
    await s.deliver(*(accepted("a", secs(i)) for i in range(3)), rejected("a", R.STALE_ROUND, secs(4)),
                    *(rejected("b", R.STALE_ROUND, secs(i)) for i in range(3)))  # b: only 3 submissions
    assert s.alerts(K.HIGH_ERROR_RATE) == []


async def test_improvement_too_slow_to_reach_the_target_in_the_rounds_left_is_slow_convergence():
    s = Stream()
    await s.create(target=0.95, rounds=10)
    for r, auc in enumerate([0.70, 0.701, 0.702, 0.703], start=1):
        await s.round(r, auc)
    [slow] = s.alerts(K.SLOW_CONVERGENCE)
    assert (slow.severity, slow.round) == (AlertSeverity.WARNING, 4) and slow.value == pytest.approx(0.001)


async def test_steady_progress_towards_the_target_or_no_target_is_not_slow():
    steady, untargeted = Stream(), Stream()
    await steady.create(target=0.95, rounds=10)
    await untargeted.create(rounds=10)
    for r, auc in enumerate([0.60, 0.70, 0.75, 0.80, 0.85], start=1):
        await steady.round(r, auc)
    for r in range(1, 6):
        await untargeted.round(r, 0.7)
    assert steady.alerts(K.SLOW_CONVERGENCE) == [] and untargeted.alerts(K.SLOW_CONVERGENCE) == []


async def test_an_update_waiting_too_long_for_its_privacy_charge_is_resource_saturation():
    s = Stream()
    slow, fast = uuid4(), uuid4()
    await s.deliver(accepted("a", secs(0), slow), accepted("b", secs(0), fast))
    await s.deliver(charged("b", secs(2), fast))
    assert s.alerts(K.RESOURCE_SATURATION) == []
    await s.deliver(charged("a", secs(45), slow))
    [saturated] = s.alerts(K.RESOURCE_SATURATION)
    assert (saturated.severity, saturated.subject, saturated.value) == (AlertSeverity.WARNING, "privacy-accounting", 45.0)


# --- info ----------------------------------------------------------------------------------------------


async def test_each_validated_round_is_a_round_completion_and_a_rejected_one_is_not():
    s = Stream()
    await s.create()
    await s.round(1, auc=0.8)
    await s.round(2, auc=0.3)
    await s.round(3, auc=0.9)
    assert [(a.round, a.severity, a.value) for a in s.alerts(K.ROUND_COMPLETED)] == [
        (1, AlertSeverity.INFO, 0.8), (3, AlertSeverity.INFO, 0.9)]


async def test_participants_join_on_their_first_heartbeat_and_leave_when_it_expires():
    s = Stream()
    await s.create()
    await s.deliver(heartbeat("a", secs(0)), heartbeat("a", secs(5)), heartbeat("b", secs(0)))
    assert [a.subject for a in s.alerts(K.PARTICIPANT_JOINED)] == ["a", "b"]
    s.now = secs(19)  # a was seen at 5 s with a 15 s TTL: still live; b expired at 15 s
    await s.monitor.expire_participants(s.txs)
    assert [a.subject for a in s.alerts(K.PARTICIPANT_LEFT)] == ["b"]
    await s.deliver(heartbeat("b", secs(20)))  # b is back: a new session
    assert [(a.subject, a.value) for a in s.alerts(K.PARTICIPANT_JOINED)] == [("a", 1), ("b", 1), ("b", 2)]


async def test_live_participants_and_those_of_a_finished_federation_do_not_leave():
    s = Stream()
    await s.create()
    await s.deliver(heartbeat("a", secs(0)), heartbeat("a", secs(10)))
    s.now = secs(20)
    await s.monitor.expire_participants(s.txs)
    await s.deliver(ev.FederationCompleted(source="registry", federation_id="f", reason=ev.CompletionReason.ROUND_BUDGET,
                                           rounds=1, final_model_version=1))
    s.now = secs(600)
    await s.monitor.expire_participants(s.txs)
    assert s.alerts(K.PARTICIPANT_LEFT) == []


async def test_a_new_federation_and_changed_round_settings_are_configuration_changes():
    s = Stream()
    await s.create()
    await s.deliver(s.opened(1), s.opened(2))  # the spec's settings: no change
    assert [a.summary for a in s.alerts(K.CONFIGURATION_CHANGE)] == [
        "federation created: batch_size=32, learning_rate=0.1, local_epochs=1, quorum=2"]
    await s.deliver(s.opened(3, learning_rate=0.05))
    changed = s.alerts(K.CONFIGURATION_CHANGE)[-1]
    assert (changed.severity, changed.round, changed.summary) == (
        AlertSeverity.INFO, 3, "round 3 runs with changed settings: learning_rate=0.05")


# --- the processor as a whole --------------------------------------------------------------------------


async def test_a_healthy_federation_raises_only_info_alerts():
    s = Stream()
    await s.create(target=0.95, rounds=5)
    for r, auc in enumerate([0.70, 0.80, 0.88, 0.93, 0.96], start=1):
        s.now = secs(60 * r)
        await s.deliver(s.opened(r), heartbeat("a", s.now), heartbeat("b", s.now))
        ids = {p: uuid4() for p in "ab"}
        await s.deliver(*(accepted(p, s.now, ids[p]) for p in "ab"))
        await s.deliver(*(charged(p, s.now + timedelta(seconds=1), ids[p], epsilon=0.05 * r, budget=0.5) for p in "ab"))
        await s.monitor.expire_participants(s.txs)
        await s.round(r, auc)
    assert {a.severity for a in s.alerts()} == {AlertSeverity.INFO}
    assert [a.round for a in s.alerts(K.ROUND_COMPLETED)] == [1, 2, 3, 4, 5]


async def test_a_redelivered_event_counts_once():
    s = Stream()
    twice = rejected("mallory", R.HASH_MISMATCH, secs(1))
    await s.deliver(twice, twice, twice, rejected("mallory", R.HASH_MISMATCH, secs(2)))
    assert s.alerts(K.SECURITY_BREACH) == []
    [w] = s.store.windows.values()
    assert (w.rejected, w.suspicious) == (2, 2)


async def test_the_time_series_record_each_round_and_participant_event():
    s = Stream()
    await s.create()
    await s.deliver(s.opened(1))
    s.now = secs(40)
    uid = uuid4()
    await s.deliver(accepted("a", secs(10), uid), charged("a", secs(12), uid, epsilon=0.1, budget=0.5),
                    rejected("b", R.STALE_ROUND, secs(13)))
    await s.round(1, auc=0.8)
    [point] = s.store.round_points
    assert (point.round, point.outcome, point.contributions, point.duration_s, point.auc) == (1, "validated", 2, 40.0, 0.8)
    kinds = [(p.participant_id, p.kind) for p in s.store.participant_points]
    assert kinds == [("a", "accepted"), ("a", "charged"), ("b", "rejected"), ("a", "evaluated"), ("b", "evaluated")]
    assert s.store.participant_points[1].latency_s == 2.0


def test_windows_are_aligned_tumbling_intervals():
    w = window_of(secs(299.9), 300)
    assert (w.start, w.end) == (T0, secs(300)) and window_of(secs(300), 300).start == secs(300)


def test_an_alert_carries_the_severity_of_its_kind():
    with pytest.raises(ValidationError, match="critical"):
        AlertRaised(source="validation", federation_id="f", kind=K.SECURITY_BREACH, severity=AlertSeverity.INFO,
                    subject="x", window_start=T0, window_end=T0, value=1.0, threshold=1.0, dedup_key="k", summary="s")
