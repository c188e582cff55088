from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from uuid import UUID

from fedstream.storage.nonces import InMemoryNonces
from services.validation.health import AdmissionCounts, FederationHealth, Window, window_of
from services.validation.ports import (
    Candidate, Departure, ParticipantBucket, ParticipantKey, ParticipantPoint, RoundBucket, RoundPoint,
)
from schemas.alerts import AlertRaised
from schemas.events import EvaluationReported
from schemas.federation import ValidationSpec


class InMemoryValidationRepository:
    def __init__(self) -> None:
        self.specs: dict[str, tuple[ValidationSpec, float]] = {}
        self.candidates: dict[tuple[str, int], Candidate] = {}
        self.reports: dict[tuple[str, int, str], EvaluationReported] = {}
        self.decisions: dict[tuple[str, int], tuple[float | None, bool]] = {}

    async def save_spec(self, federation_id: str, spec: ValidationSpec, evaluation_deadline_s: float) -> None:
        self.specs.setdefault(federation_id, (spec, evaluation_deadline_s))

    async def spec(self, federation_id: str) -> tuple[ValidationSpec, float] | None:
        return self.specs.get(federation_id)

    async def add_candidate(self, candidate: Candidate) -> bool:
        key = (candidate.federation_id, candidate.round)
        if key in self.candidates:
            return False
        self.candidates[key] = candidate
        return True

    async def lock_candidate(self, federation_id: str, round_number: int) -> Candidate | None:
        return self.candidates.get((federation_id, round_number))

    async def add_evaluation(self, evaluation: EvaluationReported) -> bool:
        key = (evaluation.federation_id, evaluation.round, evaluation.participant_id)
        if key in self.reports:
            return False
        self.reports[key] = evaluation
        return True

    async def evaluations(self, federation_id: str, round_number: int, candidate_sha256: str) -> list[EvaluationReported]:
        return [
            e for (f, r, p), e in sorted(self.reports.items())
            if f == federation_id and r == round_number and e.candidate_sha256 == candidate_sha256
        ]

    async def reporters(self, federation_id: str, round_number: int, candidate_sha256: str) -> set[str]:
        return {e.participant_id for e in await self.evaluations(federation_id, round_number, candidate_sha256)}

    async def record_decision(self, federation_id: str, round_number: int, score: float | None, accepted: bool) -> None:
        key = (federation_id, round_number)
        self.candidates[key] = replace(self.candidates[key], decided=True)
        self.decisions[key] = (score, accepted)

    async def accepted_scores(self, federation_id: str) -> list[float]:
        return [s for (f, _), (s, ok) in sorted(self.decisions.items()) if f == federation_id and ok and s is not None]

    async def due_candidates(self, now: datetime) -> list[tuple[str, int]]:
        return [k for k, c in self.candidates.items() if not c.decided and c.deadline <= now]


class InMemoryHealthRepository:
    def __init__(self) -> None:
        self.federations: dict[str, FederationHealth] = {}
        self.windows: dict[tuple[str, str, datetime], AdmissionCounts] = {}
        self.pending: dict[UUID, datetime] = {}
        self.opened: dict[tuple[str, int], datetime] = {}
        self.participants: dict[tuple[str, str], dict] = {}
        self.alerts: dict[str, AlertRaised] = {}
        self.round_points: list[RoundPoint] = []
        self.participant_points: list[ParticipantPoint] = []

    async def save_health(self, health: FederationHealth) -> None:
        self.federations[health.federation_id] = health

    async def health(self, federation_id: str) -> FederationHealth | None:
        return self.federations.get(federation_id)

    async def record_admission(
        self, point: ParticipantPoint, window: Window, increments: tuple[int, int, int], update_id: UUID | None
    ) -> AdmissionCounts:
        key = (point.federation_id, point.participant_id, window.start)
        w = self.windows.get(key, AdmissionCounts(point.federation_id, point.participant_id, window))
        accepted, rejected, suspicious = increments
        self.windows[key] = w = replace(
            w, accepted=w.accepted + accepted, rejected=w.rejected + rejected, suspicious=w.suspicious + suspicious
        )
        if update_id is not None:
            self.pending.setdefault(update_id, point.time)
        self.participant_points.append(point)
        return w

    async def record_charge(self, point: ParticipantPoint, update_id: UUID) -> tuple[float | None, float | None]:
        accepted_at = self.pending.pop(update_id, None)
        latency = (point.time - accepted_at).total_seconds() if accepted_at is not None else None
        self.participant_points.append(replace(point, latency_s=latency))
        h = self.federations.get(point.federation_id)
        return latency, h.budget_epsilon if h else None

    async def open_round(self, federation_id: str, round_number: int, at: datetime) -> None:
        self.opened.setdefault((federation_id, round_number), at)

    async def round_opened_at(self, federation_id: str, round_number: int) -> datetime | None:
        return self.opened.get((federation_id, round_number))

    async def heartbeat(self, federation_id: str, participant_id: str, at: datetime, ttl_s: float) -> int | None:
        if federation_id in self.federations and self.federations[federation_id].completed:
            return None
        p = self.participants.get((federation_id, participant_id))
        if p is None:
            self.participants[(federation_id, participant_id)] = {"last_seen": at, "ttl_s": ttl_s, "live": True, "session": 1}
            return 1
        joined = not p["live"]
        p.update(last_seen=max(p["last_seen"], at), ttl_s=ttl_s, live=True, session=p["session"] + int(joined))
        return p["session"] if joined else None

    async def expire(self, now: datetime) -> list[Departure]:
        gone = []
        for (f, participant), p in sorted(self.participants.items()):
            finished = f in self.federations and self.federations[f].completed
            if p["live"] and not finished and p["last_seen"] + timedelta(seconds=p["ttl_s"]) < now:
                p["live"] = False
                gone.append(Departure(f, participant, p["session"], p["last_seen"], p["ttl_s"]))
        return gone

    async def claim_alert(self, alert: AlertRaised) -> bool:
        if alert.dedup_key in self.alerts:
            return False
        self.alerts[alert.dedup_key] = alert
        return True

    async def create_partitions(self) -> int:
        return 0  # nothing to partition in memory

    async def add_round_point(self, point: RoundPoint) -> None:
        self.round_points.append(point)

    async def add_participant_point(self, point: ParticipantPoint) -> None:
        self.participant_points.append(point)


class InMemoryKeyRepository(InMemoryNonces):
    def __init__(self) -> None:
        super().__init__()
        self.keys_by_id: dict[str, ParticipantKey] = {}

    async def save_key(self, key: ParticipantKey) -> None:
        self.keys_by_id.setdefault(key.key_id, key)

    async def revoke_key(self, key_id: str) -> None:
        if key_id in self.keys_by_id:
            self.keys_by_id[key_id] = replace(self.keys_by_id[key_id], revoked=True)

    async def keys(self, key_ids: Collection[str]) -> dict[str, ParticipantKey]:
        return {k: self.keys_by_id[k] for k in key_ids if k in self.keys_by_id}


class InMemoryValidationStore(InMemoryValidationRepository, InMemoryHealthRepository, InMemoryKeyRepository):
    def __init__(self) -> None:
        InMemoryValidationRepository.__init__(self)
        InMemoryHealthRepository.__init__(self)
        InMemoryKeyRepository.__init__(self)


class InMemoryMetricsSeries:
    """The time-series queries over a fake store's points, bucketed as date_bin does (origin ``EPOCH``)."""

    def __init__(self, store: InMemoryHealthRepository) -> None:
        self.store = store

    async def rounds(self, federation_id: str, bucket_s: float, since: datetime, until: datetime) -> list[RoundBucket]:
        groups = _buckets(self.store.round_points, federation_id, bucket_s, since, until)
        return [
            RoundBucket(
                bucket=b, rounds=len(ps), validated=sum(p.outcome == "validated" for p in ps),
                unsuccessful=sum(p.outcome != "validated" for p in ps),
                mean_duration_s=_mean([p.duration_s for p in ps]), best_accuracy=_max([p.accuracy for p in ps]),
                best_auc=_max([p.auc for p in ps]),
            )
            for b, ps in sorted(groups.items())
        ]

    async def participants(
        self, federation_id: str, bucket_s: float, since: datetime, until: datetime
    ) -> list[ParticipantBucket]:
        groups: dict[tuple[datetime, str], list[ParticipantPoint]] = {}
        for b, ps in _buckets(self.store.participant_points, federation_id, bucket_s, since, until).items():
            for p in ps:
                groups.setdefault((b, p.participant_id), []).append(p)
        return [
            ParticipantBucket(
                bucket=b, participant_id=participant, accepted=sum(p.kind == "accepted" for p in ps),
                rejected=sum(p.kind == "rejected" for p in ps), max_epsilon=_max([p.epsilon for p in ps]),
                mean_train_loss=_mean([p.train_loss for p in ps]), max_latency_s=_max([p.latency_s for p in ps]),
            )
            for (b, participant), ps in sorted(groups.items())
        ]


def _buckets(points, federation_id: str, bucket_s: float, since: datetime, until: datetime) -> dict:  # noqa: ANN001
    out: dict[datetime, list] = {}
    for p in points:
        if p.federation_id == federation_id and since <= p.time < until:
            out.setdefault(window_of(p.time, bucket_s).start, []).append(p)
    return out


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _max(values: list[float | None]) -> float | None:
    return max((v for v in values if v is not None), default=None)
