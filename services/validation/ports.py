from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from fedstream.security.message_auth import NonceClaim
from services.validation.health import AdmissionCounts, FederationHealth, Window
from schemas.alerts import AlertRaised
from schemas.base import BlobRef
from schemas.events import Contribution, EvaluationReported
from schemas.federation import ValidationSpec


@dataclass(frozen=True)
class Candidate:
    federation_id: str
    round: int
    candidate: BlobRef
    contributions: tuple[Contribution, ...]
    deadline: datetime
    decided: bool

    @property
    def expected_evaluators(self) -> frozenset[str]:
        return frozenset(c.participant_id for c in self.contributions)


class ValidationRepository(Protocol):
    async def save_spec(self, federation_id: str, spec: ValidationSpec, evaluation_deadline_s: float) -> None: ...

    async def spec(self, federation_id: str) -> tuple[ValidationSpec, float] | None: ...

    async def add_candidate(self, candidate: Candidate) -> bool: ...

    async def lock_candidate(self, federation_id: str, round_number: int) -> Candidate | None: ...

    async def add_evaluation(self, evaluation: EvaluationReported) -> bool: ...

    async def evaluations(self, federation_id: str, round_number: int, candidate_sha256: str) -> list[EvaluationReported]: ...

    async def reporters(self, federation_id: str, round_number: int, candidate_sha256: str) -> set[str]:
        """Who has evaluated this candidate (cheap: no reports decoded)."""

    async def record_decision(self, federation_id: str, round_number: int, score: float | None, accepted: bool) -> None: ...

    async def accepted_scores(self, federation_id: str) -> list[float]:
        """Scores of accepted models, in round order."""

    async def due_candidates(self, now: datetime) -> list[tuple[str, int]]: ...


# --- health: windowed state of the alert processor, and the metrics time series -----------------------


@dataclass(frozen=True)
class RoundPoint:
    """One round outcome, as a row of the ``round_metrics`` time series."""

    time: datetime
    federation_id: str
    round: int
    outcome: str  # validated | rejected | failed
    contributions: int
    duration_s: float | None  # round opened → outcome; None when the opening was not seen
    loss: float | None = None
    accuracy: float | None = None
    auc: float | None = None


@dataclass(frozen=True)
class ParticipantPoint:
    """One participant event, as a row of the ``participant_metrics`` time series."""

    time: datetime
    federation_id: str
    participant_id: str
    round: int
    kind: str  # accepted | rejected | charged | evaluated | refused (an evaluation report that failed verification)
    num_examples: int | None = None
    train_loss: float | None = None
    epsilon: float | None = None
    latency_s: float | None = None  # accepted → charged
    loss: float | None = None
    accuracy: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RoundBucket:
    bucket: datetime
    rounds: int
    validated: int
    unsuccessful: int  # rejected or failed
    mean_duration_s: float | None
    best_accuracy: float | None
    best_auc: float | None


@dataclass(frozen=True)
class ParticipantBucket:
    bucket: datetime
    participant_id: str
    accepted: int
    rejected: int
    max_epsilon: float | None
    mean_train_loss: float | None
    max_latency_s: float | None


@dataclass(frozen=True)
class Departure:
    """A participant whose heartbeat expired; ``session`` counts its joins."""

    federation_id: str
    participant_id: str
    session: int
    last_seen: datetime
    ttl_s: float


class HealthRepository(Protocol):
    async def save_health(self, health: FederationHealth) -> None: ...

    async def health(self, federation_id: str) -> FederationHealth | None:
        """Locked for the rest of the transaction (rules read, fold and write it back)."""

    async def record_admission(
        self, point: ParticipantPoint, window: Window, increments: tuple[int, int, int], update_id: UUID | None
    ) -> AdmissionCounts:
        """One admission decision in one round trip: add (accepted, rejected, suspicious) ``increments`` to the
        participant's window (atomically, so concurrent batches add up), add the series point, and for an
        accepted update (``update_id``) remember when, for its charge's latency. Returns the window's totals."""

    async def record_charge(self, point: ParticipantPoint, update_id: UUID) -> tuple[float | None, float | None]:
        """One privacy charge in one round trip: the point (with the latency since the update was accepted,
        if that was seen) is added; returns (that latency in seconds, the federation's ε budget)."""

    async def open_round(self, federation_id: str, round_number: int, at: datetime) -> None: ...

    async def round_opened_at(self, federation_id: str, round_number: int) -> datetime | None: ...

    async def heartbeat(self, federation_id: str, participant_id: str, at: datetime, ttl_s: float) -> int | None:
        """Record a heartbeat; the participant's new session number if it was not live before, else None.
        Heartbeats for a completed federation (the runtime's last beats) are ignored."""

    async def expire(self, now: datetime) -> list[Departure]:
        """Participants of unfinished federations whose heartbeat expired by ``now``, marked gone."""

    async def claim_alert(self, alert: AlertRaised) -> bool:
        """Record the alert under its dedup key; False if that fact was already raised."""

    async def create_partitions(self) -> int:
        """Time partitions ahead of time where the store needs them; how many were created now."""

    async def add_round_point(self, point: RoundPoint) -> None: ...

    async def add_participant_point(self, point: ParticipantPoint) -> None: ...


class MetricsSeries(Protocol):
    """The time-series queries (the same SQL on a TimescaleDB hypertable and on native partitions)."""

    async def rounds(self, federation_id: str, bucket_s: float, since: datetime, until: datetime) -> list[RoundBucket]: ...

    async def participants(
        self, federation_id: str, bucket_s: float, since: datetime, until: datetime
    ) -> list[ParticipantBucket]: ...


# --- senders: validation's projection of participants' keys (facts from fedstream.identity) ------------


@dataclass(frozen=True)
class ParticipantKey:
    """An enrolled key, as validation knows it (fits ``fedstream.security.message_auth.SignerKey``)."""

    key_id: str
    participant_id: str
    organisation: str
    public_key: str
    revoked: bool = False


class KeyRepository(Protocol):
    async def save_key(self, key: ParticipantKey) -> None:
        """Record an enrolled key; enrolling it again changes nothing (a revoked key stays revoked)."""

    async def revoke_key(self, key_id: str) -> None:
        """Mark the key revoked (its enrolment came before, on the same organisation-keyed partition)."""

    async def keys(self, key_ids: Collection[str]) -> dict[str, ParticipantKey]:
        """The known ones of these keys, by key id (one lookup for a whole batch of messages)."""

    async def use_nonces(self, claims: Sequence[NonceClaim]) -> set[UUID]:
        """The replay guard, for a batch at once: the event ids whose claim holds — the first use of a key's
        nonce, or again by the same event (a retried batch); not any other message carrying it (nor a later
        claim of the same nonce in ``claims``)."""

    async def forget_nonces(self, signed_before: datetime) -> int:
        """Prune nonces too old to matter (their messages are refused as stale); returns how many."""
