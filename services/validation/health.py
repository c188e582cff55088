"""Federation health as pure functions: tumbling windows over the event stream, and the rules that turn
a window (or one event) into an ``AlertRaised`` — seed §6.2's critical, warning and info alerts.

Windows are keyed by *event* time, not by when this process happens to read the event, so a replay of
the topics or a lagging consumer puts every event in the same window and raises the same alerts. Each
alert's ``dedup_key`` names the fact (kind, subject, window); the event id is derived from it, so a
condition that keeps holding within its window raises one alert, not one per event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from schemas.alerts import SEVERITY, AlertKind, AlertRaised
from schemas.base import derived_id
from schemas.events import RejectionReason
from schemas.topics import VALIDATION

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # window origin; also date_bin's origin in the time-series queries
FEDERATION = "federation"  # the subject of alerts about the federation as a whole

# Rejections that mean someone tried to get past admission rather than misconfigured a client: tampered
# blobs, impostors, forged/replayed/revoked signatures. Read by name so the rule follows the enum.
_SECURITY_REASON_NAMES = (
    "hash_mismatch", "not_enrolled", "signature_invalid", "unknown_key", "key_revoked", "source_mismatch", "replayed",
)
SECURITY_REASONS = frozenset(r for r in RejectionReason if r.value in _SECURITY_REASON_NAMES)


@dataclass(frozen=True)
class AlertPolicy:
    """Thresholds of the rules (validation settings feed them)."""

    window_s: float = 300.0  # tumbling window of the per-participant counters
    security_reasons: frozenset[RejectionReason] = SECURITY_REASONS
    security_burst: int = 3  # suspicious rejections of one participant in one window → breach
    error_rate: float = 0.5  # rejected / submitted above this in one window → high error rate
    error_min_updates: int = 4  # …with at least this many submissions, so one bad update is not a rate
    failure_streak: int = 3  # consecutive rounds failed or rejected → convergence failure
    slow_convergence_rounds: int = 3  # rounds over which the improvement rate is measured
    saturation_latency_s: float = 30.0  # accepted → charged slower than this → the accountant is saturated
    epsilon_tolerance: float = 1e-9  # float noise in the ledger's sums is not a violation


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


def window_of(at: datetime, window_s: float) -> Window:
    """The tumbling window (aligned on ``EPOCH``) that contains ``at``."""
    width = timedelta(seconds=window_s)
    start = EPOCH + ((at - EPOCH) // width) * width
    return Window(start, start + width)


@dataclass(frozen=True)
class AdmissionCounts:
    """One participant's admissions in one window (what the windowed table holds)."""

    federation_id: str
    participant_id: str
    window: Window
    accepted: int = 0
    rejected: int = 0
    suspicious: int = 0

    @property
    def submitted(self) -> int:
        return self.accepted + self.rejected


@dataclass(frozen=True)
class FederationHealth:
    """What the rules need to know about a federation beyond one event (from its spec and its rounds)."""

    federation_id: str
    rounds_total: int
    target_metric: float | None
    budget_epsilon: float | None
    config: Mapping[str, float] = field(default_factory=dict)  # the last round's training configuration
    failure_streak: int = 0  # consecutive rounds failed or rejected since the last validated one
    streak_start_round: int | None = None
    completed: bool = False


def alert(
    kind: AlertKind, federation_id: str, subject: str, window: Window, value: float, threshold: float,
    summary: str, at: datetime, key: Sequence[object], round_number: int | None = None,
) -> AlertRaised:
    dedup_key = "/".join(str(p) for p in (federation_id, kind.value, subject, *key))
    return AlertRaised(
        event_id=derived_id("alert", dedup_key), source=VALIDATION, time=at, federation_id=federation_id,
        kind=kind, severity=SEVERITY[kind], subject=subject[:128], round=round_number, window_start=window.start,
        window_end=window.end, value=value, threshold=threshold, dedup_key=dedup_key[:512], summary=summary[:2000],
    )


# --- per-participant windows -------------------------------------------------------------------------


def count_admission(reason: RejectionReason | None, policy: AlertPolicy) -> tuple[int, int, int]:
    """The (accepted, rejected, suspicious) increments one admission decision adds to its window."""
    if reason is None:
        return 1, 0, 0
    return 0, 1, int(reason in policy.security_reasons)


def count_refusal(reason: str, policy: AlertPolicy) -> tuple[int, int, int]:
    """The increments a refused evaluation report adds to its claimed participant's window: no update was
    submitted (the error rate is about updates), but a hostile refusal is as suspicious as a hostile rejection."""
    return 0, 0, int(reason in {r.value for r in policy.security_reasons})


def security_breach(w: AdmissionCounts, at: datetime, policy: AlertPolicy) -> AlertRaised | None:
    if w.suspicious < policy.security_burst:
        return None
    return alert(
        AlertKind.SECURITY_BREACH, w.federation_id, w.participant_id, w.window, w.suspicious, policy.security_burst,
        f"{w.participant_id}: {w.suspicious} updates or evaluation reports refused as forged, tampered, replayed or "
        f"from an unknown sender within {policy.window_s:g}s", at, (w.window.start.isoformat(),),
    )


def high_error_rate(w: AdmissionCounts, at: datetime, policy: AlertPolicy) -> AlertRaised | None:
    if w.submitted < policy.error_min_updates:
        return None
    rate = w.rejected / w.submitted
    if rate <= policy.error_rate:
        return None
    return alert(
        AlertKind.HIGH_ERROR_RATE, w.federation_id, w.participant_id, w.window, rate, policy.error_rate,
        f"{w.participant_id}: {w.rejected} of {w.submitted} updates rejected ({rate:.0%}) within {policy.window_s:g}s",
        at, (w.window.start.isoformat(),),
    )


# --- per-update ----------------------------------------------------------------------------------------


def privacy_violation(
    federation_id: str, participant_id: str, round_number: int, epsilon: float | None, budget: float | None,
    at: datetime, policy: AlertPolicy,
) -> AlertRaised | None:
    """A charge that takes cumulative ε above the budget: the ledger exists to make this impossible."""
    if epsilon is None or budget is None or epsilon <= budget + policy.epsilon_tolerance:
        return None
    return alert(
        AlertKind.PRIVACY_VIOLATION, federation_id, participant_id, Window(at, at), epsilon, budget,
        f"{participant_id}: cumulative ε = {epsilon:.4g} charged in round {round_number}, above the budget {budget:g}",
        at, (round_number,), round_number,
    )


def resource_saturation(
    federation_id: str, stage: str, latency_s: float, at: datetime, policy: AlertPolicy
) -> AlertRaised | None:
    """An event waited too long between two services: the stage in between cannot keep up (USE: saturation
    is queueing). One alert per stage per window."""
    if latency_s <= policy.saturation_latency_s:
        return None
    w = window_of(at, policy.window_s)
    return alert(
        AlertKind.RESOURCE_SATURATION, federation_id, stage, w, latency_s, policy.saturation_latency_s,
        f"{stage} took {latency_s:.1f}s to process an update (threshold {policy.saturation_latency_s:g}s): it is saturated",
        at, (w.start.isoformat(),),
    )


# --- per-round -----------------------------------------------------------------------------------------


def after_round_outcome(h: FederationHealth, round_number: int, released: bool) -> FederationHealth:
    """Fold one round outcome into the federation's failure streak."""
    if released:
        return replace(h, failure_streak=0, streak_start_round=None)
    start = h.streak_start_round if h.failure_streak else round_number
    return replace(h, failure_streak=h.failure_streak + 1, streak_start_round=start)


def convergence_failure(h: FederationHealth, round_number: int, at: datetime, policy: AlertPolicy) -> AlertRaised | None:
    if h.failure_streak < policy.failure_streak:
        return None
    return alert(
        AlertKind.CONVERGENCE_FAILURE, h.federation_id, FEDERATION, Window(at, at), h.failure_streak, policy.failure_streak,
        f"{h.failure_streak} consecutive rounds failed or were rejected since round {h.streak_start_round}; no model released",
        at, (h.streak_start_round,), round_number,
    )


def slow_convergence(
    h: FederationHealth, round_number: int, scores: Sequence[float], at: datetime, policy: AlertPolicy
) -> AlertRaised | None:
    """At the improvement rate of the last k validated rounds, the target is out of reach within the round
    budget. Only meaningful with a target; without one, validation's own early stopping decides."""
    k = policy.slow_convergence_rounds
    if h.target_metric is None or len(scores) <= k or scores[-1] >= h.target_metric:
        return None
    gain_per_round = (scores[-1] - scores[-1 - k]) / k
    rounds_left = max(h.rounds_total - round_number, 0)
    needed = h.target_metric - scores[-1]
    if gain_per_round > 0 and needed / gain_per_round <= rounds_left:
        return None
    window_index = round_number // k  # one alert per k rounds while it stays slow
    return alert(
        AlertKind.SLOW_CONVERGENCE, h.federation_id, FEDERATION, Window(at, at), gain_per_round, needed / max(rounds_left, 1),
        f"score {scores[-1]:.4f} improves {gain_per_round:+.4f}/round; the target {h.target_metric:g} needs "
        f"{needed:.4f} in {rounds_left} rounds left", at, (window_index,), round_number,
    )


def round_completed(federation_id: str, round_number: int, score: float | None, at: datetime) -> AlertRaised:
    return alert(
        AlertKind.ROUND_COMPLETED, federation_id, FEDERATION, Window(at, at), score if score is not None else 0.0, 0.0,
        f"round {round_number} validated" + (f" (score {score:.4f})" if score is not None else ""), at, (round_number,),
        round_number,
    )


def configuration_change(
    federation_id: str, before: Mapping[str, float] | None, after: Mapping[str, float], round_number: int | None,
    at: datetime,
) -> AlertRaised | None:
    """A federation created (``before`` None), or a round opened with other training settings than the last."""
    if before is not None and dict(before) == dict(after):
        return None
    changed = dict(after) if before is None else {k: v for k, v in after.items() if before.get(k) != v}
    if before is None:
        summary, key = "federation created: " + _settings(after), ("created",)
    else:
        summary, key = f"round {round_number} runs with changed settings: " + _settings(changed), (round_number,)
    # value: how many settings are new or changed
    return alert(AlertKind.CONFIGURATION_CHANGE, federation_id, FEDERATION, Window(at, at), len(changed), 0.0, summary,
                 at, key, round_number)


def _settings(values: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(values.items()))


# --- participation -------------------------------------------------------------------------------------


def participant_joined(federation_id: str, participant_id: str, session: int, at: datetime) -> AlertRaised:
    return alert(
        AlertKind.PARTICIPANT_JOINED, federation_id, participant_id, Window(at, at), session, 0.0,
        f"{participant_id} joined (heartbeat; session {session})", at, (session,),
    )


def participant_left(
    federation_id: str, participant_id: str, session: int, last_seen: datetime, ttl_s: float, at: datetime
) -> AlertRaised:
    return alert(
        AlertKind.PARTICIPANT_LEFT, federation_id, participant_id, Window(last_seen, at), (at - last_seen).total_seconds(),
        ttl_s, f"{participant_id} left: no heartbeat for {(at - last_seen).total_seconds():.0f}s (TTL {ttl_s:g}s)", at,
        (session,),
    )
