"""PostgreSQL adapters of validation's state (infra/migrations/006_validation.sql), of its alert processor's
windows and time series (012_health_alerts_timeseries.sql) and of its participants' keys (021_validation_keys.sql)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from fedstream.storage.nonces import claim_nonces, forget_nonces

from services.validation.health import EPOCH, AdmissionCounts, FederationHealth, Window
from services.validation.ports import (
    Candidate, Departure, NonceClaim, ParticipantBucket, ParticipantKey, ParticipantPoint, RoundBucket, RoundPoint,
)
from schemas.alerts import AlertRaised
from schemas.base import BlobRef
from schemas.events import Contribution, EvaluationReported
from schemas.federation import ValidationSpec


class PostgresValidationRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def save_spec(self, federation_id: str, spec: ValidationSpec, evaluation_deadline_s: float) -> None:
        await self.conn.execute(
            "INSERT INTO validation_federations (federation_id, spec, evaluation_deadline_s) VALUES ($1,$2,$3) "
            "ON CONFLICT DO NOTHING",
            federation_id, spec.model_dump(mode="json"), evaluation_deadline_s,
        )

    async def spec(self, federation_id: str) -> tuple[ValidationSpec, float] | None:
        row = await self.conn.fetchrow("SELECT * FROM validation_federations WHERE federation_id = $1", federation_id)
        if row is None:
            return None
        return ValidationSpec.model_validate(row["spec"], strict=False), row["evaluation_deadline_s"]

    async def add_candidate(self, c: Candidate) -> bool:
        status = await self.conn.execute(
            "INSERT INTO validation_candidates (federation_id, round, candidate, contributions, deadline, decided) "
            "VALUES ($1,$2,$3,$4,$5,false) ON CONFLICT DO NOTHING",
            c.federation_id, c.round, c.candidate.model_dump(mode="json"),
            [x.model_dump(mode="json") for x in c.contributions], c.deadline,
        )
        return status.endswith(" 1")

    async def lock_candidate(self, federation_id: str, round_number: int) -> Candidate | None:
        row = await self.conn.fetchrow(
            "SELECT * FROM validation_candidates WHERE federation_id = $1 AND round = $2 FOR UPDATE", federation_id, round_number
        )
        if row is None:
            return None
        return Candidate(
            row["federation_id"], row["round"], BlobRef.model_validate(row["candidate"], strict=False),
            tuple(Contribution.model_validate(x, strict=False) for x in row["contributions"]), row["deadline"], row["decided"],
        )

    async def add_evaluation(self, e: EvaluationReported) -> bool:
        status = await self.conn.execute(
            "INSERT INTO validation_evaluations (federation_id, round, participant_id, candidate_sha256, report) "
            "VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
            e.federation_id, e.round, e.participant_id, e.candidate_sha256, e.model_dump(mode="json"),
        )
        return status.endswith(" 1")

    async def evaluations(self, federation_id: str, round_number: int, candidate_sha256: str) -> list[EvaluationReported]:
        rows = await self.conn.fetch(
            "SELECT report FROM validation_evaluations WHERE federation_id = $1 AND round = $2 AND candidate_sha256 = $3 "
            "ORDER BY participant_id",
            federation_id, round_number, candidate_sha256,
        )
        return [EvaluationReported.model_validate(r["report"], strict=False) for r in rows]

    async def reporters(self, federation_id: str, round_number: int, candidate_sha256: str) -> set[str]:
        rows = await self.conn.fetch(
            "SELECT participant_id FROM validation_evaluations WHERE federation_id = $1 AND round = $2 AND candidate_sha256 = $3",
            federation_id, round_number, candidate_sha256,
        )
        return {r["participant_id"] for r in rows}

    async def record_decision(self, federation_id: str, round_number: int, score: float | None, accepted: bool) -> None:
        await self.conn.execute(
            "UPDATE validation_candidates SET decided = true, score = $3, accepted = $4 WHERE federation_id = $1 AND round = $2",
            federation_id, round_number, score, accepted,
        )

    async def accepted_scores(self, federation_id: str) -> list[float]:
        rows = await self.conn.fetch(
            "SELECT score FROM validation_candidates WHERE federation_id = $1 AND accepted ORDER BY round", federation_id
        )
        return [r["score"] for r in rows]

    async def due_candidates(self, now: datetime) -> list[tuple[str, int]]:
        rows = await self.conn.fetch(
            "SELECT federation_id, round FROM validation_candidates WHERE NOT decided AND deadline <= $1 "
            "ORDER BY deadline FOR UPDATE SKIP LOCKED",
            now,
        )
        return [(r["federation_id"], r["round"]) for r in rows]


class PostgresHealthRepository:
    """The alert processor's windowed state and the metrics time series (012_health_alerts_timeseries.sql)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def save_health(self, h: FederationHealth) -> None:
        await self.conn.execute(
            "INSERT INTO health_federations (federation_id, rounds_total, target_metric, budget_epsilon, config, "
            "failure_streak, streak_start_round, completed) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
            "ON CONFLICT (federation_id) DO UPDATE SET config = EXCLUDED.config, failure_streak = EXCLUDED.failure_streak, "
            "streak_start_round = EXCLUDED.streak_start_round, completed = EXCLUDED.completed",
            h.federation_id, h.rounds_total, h.target_metric, h.budget_epsilon, dict(h.config), h.failure_streak,
            h.streak_start_round, h.completed,
        )

    async def health(self, federation_id: str) -> FederationHealth | None:
        row = await self.conn.fetchrow("SELECT * FROM health_federations WHERE federation_id = $1 FOR UPDATE", federation_id)
        return None if row is None else FederationHealth(**dict(row))

    async def record_admission(
        self, point: ParticipantPoint, window: Window, increments: tuple[int, int, int], update_id: UUID | None
    ) -> AdmissionCounts:
        row = await self.conn.fetchrow(_RECORD_ADMISSION, point.federation_id, point.participant_id, window.start,
                                       window.end, *increments, update_id, point.time, *_point_values(point)[3:])
        return AdmissionCounts(point.federation_id, point.participant_id, window, row["accepted"], row["rejected"],
                               row["suspicious"])

    async def record_charge(self, point: ParticipantPoint, update_id: UUID) -> tuple[float | None, float | None]:
        values = _point_values(point)
        row = await self.conn.fetchrow(_RECORD_CHARGE, update_id, *values[:8], *values[9:])
        return row["latency_s"], row["budget"]

    async def open_round(self, federation_id: str, round_number: int, at: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO health_rounds (federation_id, round, opened_at) VALUES ($1,$2,$3) ON CONFLICT DO NOTHING",
            federation_id, round_number, at,
        )

    async def round_opened_at(self, federation_id: str, round_number: int) -> datetime | None:
        return await self.conn.fetchval(
            "SELECT opened_at FROM health_rounds WHERE federation_id = $1 AND round = $2", federation_id, round_number
        )

    async def heartbeat(self, federation_id: str, participant_id: str, at: datetime, ttl_s: float) -> int | None:
        # `before` sees the row as it was before this statement: was the participant live already?
        row = await self.conn.fetchrow(
            "WITH before AS (SELECT live FROM health_participants WHERE federation_id = $1 AND participant_id = $2) "
            "INSERT INTO health_participants AS p (federation_id, participant_id, last_seen, ttl_s, live, session) "
            "SELECT $1,$2,$3,$4,true,1 WHERE NOT EXISTS "
            "(SELECT 1 FROM health_federations WHERE federation_id = $1 AND completed) "
            "ON CONFLICT (federation_id, participant_id) DO UPDATE SET "
            "last_seen = greatest(p.last_seen, $3), ttl_s = $4, live = true, "
            "session = p.session + CASE WHEN p.live THEN 0 ELSE 1 END "
            "RETURNING session, coalesce((SELECT live FROM before), false) AS was_live",
            federation_id, participant_id, at, ttl_s,
        )
        return None if row is None or row["was_live"] else row["session"]

    async def expire(self, now: datetime) -> list[Departure]:
        rows = await self.conn.fetch(
            "UPDATE health_participants p SET live = false FROM ("
            "  SELECT federation_id, participant_id FROM health_participants q WHERE live "
            "  AND last_seen + make_interval(secs => ttl_s) < $1 "
            "  AND NOT EXISTS (SELECT 1 FROM health_federations f WHERE f.federation_id = q.federation_id AND f.completed) "
            "  FOR UPDATE SKIP LOCKED) due "
            "WHERE p.federation_id = due.federation_id AND p.participant_id = due.participant_id "
            "RETURNING p.federation_id, p.participant_id, p.session, p.last_seen, p.ttl_s",
            now,
        )
        return sorted((Departure(**dict(r)) for r in rows), key=lambda d: (d.federation_id, d.participant_id))

    async def claim_alert(self, alert: AlertRaised) -> bool:
        status = await self.conn.execute(
            "INSERT INTO alerts_raised (dedup_key, event_id, federation_id, kind, severity, raised_at, alert) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT DO NOTHING",
            alert.dedup_key, alert.event_id, alert.federation_id, alert.kind.value, alert.severity.value, alert.time,
            alert.model_dump(mode="json"),
        )
        return status.endswith(" 1")

    async def create_partitions(self) -> int:
        """Month partitions of the time series up to three months ahead; how many were created now.

        DDL needs the tables' owner: the function runs as it (SECURITY DEFINER, migration 019)."""
        return await self.conn.fetchval("SELECT fedstream_extend_metric_partitions()")

    async def add_round_point(self, p: RoundPoint) -> None:
        await self.conn.execute(
            "INSERT INTO round_metrics (time, federation_id, round, outcome, contributions, duration_s, loss, accuracy, auc) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
            p.time, p.federation_id, p.round, p.outcome, p.contributions, p.duration_s, p.loss, p.accuracy, p.auc,
        )

    async def add_participant_point(self, p: ParticipantPoint) -> None:
        await self.conn.execute(f"INSERT INTO participant_metrics ({_POINT_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
                                *_point_values(p))


_POINT_COLUMNS = "time, federation_id, participant_id, round, kind, num_examples, train_loss, epsilon, latency_s, loss, accuracy, reason"


def _point_values(p: ParticipantPoint) -> tuple:
    """In _POINT_COLUMNS order."""
    return (p.time, p.federation_id, p.participant_id, p.round, p.kind, p.num_examples, p.train_loss, p.epsilon,
            p.latency_s, p.loss, p.accuracy, p.reason)


# Handlers run once per event, so each admission and each charge is one round trip (data-modifying CTEs).
_RECORD_ADMISSION = f"""
WITH w AS (
    INSERT INTO health_participant_windows AS w
        (federation_id, participant_id, window_start, window_end, accepted, rejected, suspicious)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (federation_id, participant_id, window_start) DO UPDATE
        SET accepted = w.accepted + $5, rejected = w.rejected + $6, suspicious = w.suspicious + $7
    RETURNING accepted, rejected, suspicious
), pending AS (
    INSERT INTO health_pending_charges (update_id, federation_id, accepted_at)
    SELECT $8::uuid, $1, $9 WHERE $8::uuid IS NOT NULL ON CONFLICT DO NOTHING
), point AS (
    INSERT INTO participant_metrics ({_POINT_COLUMNS}) VALUES ($9, $1, $2, $10, $11, $12, $13, $14, $15, $16, $17, $18)
)
SELECT accepted, rejected, suspicious FROM w
"""

_RECORD_CHARGE = f"""
WITH taken AS (
    DELETE FROM health_pending_charges WHERE update_id = $1 RETURNING accepted_at
), latency AS (
    SELECT (SELECT extract(epoch FROM $2::timestamptz - accepted_at)::float8 FROM taken) AS s
), point AS (
    INSERT INTO participant_metrics ({_POINT_COLUMNS})
    SELECT $2, $3, $4, $5, $6, $7, $8, $9, latency.s, $10, $11, $12 FROM latency
)
SELECT (SELECT s FROM latency) AS latency_s,
       (SELECT budget_epsilon FROM health_federations WHERE federation_id = $3) AS budget
"""


class PostgresKeyRepository:
    """Validation's projection of participants' keys and its replay guard (021_validation_keys.sql)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def save_key(self, k: ParticipantKey) -> None:
        await self.conn.execute(
            "INSERT INTO validation_participant_keys (key_id, participant_id, organisation, public_key, revoked) "
            "VALUES ($1,$2,$3,$4,$5) ON CONFLICT (key_id) DO NOTHING",
            k.key_id, k.participant_id, k.organisation, k.public_key, k.revoked,
        )

    async def revoke_key(self, key_id: str) -> None:
        await self.conn.execute("UPDATE validation_participant_keys SET revoked = true WHERE key_id = $1", key_id)

    async def keys(self, key_ids: Collection[str]) -> dict[str, ParticipantKey]:
        rows = await self.conn.fetch("SELECT * FROM validation_participant_keys WHERE key_id = ANY($1::text[])", list(key_ids))
        return {r["key_id"]: ParticipantKey(**dict(r)) for r in rows}

    async def use_nonces(self, claims: Sequence[NonceClaim]) -> set[UUID]:
        return await claim_nonces(self.conn, "validation_nonces", claims)

    async def forget_nonces(self, signed_before: datetime) -> int:
        return await forget_nonces(self.conn, "validation_nonces", signed_before)


class PostgresValidationStore(PostgresValidationRepository, PostgresHealthRepository, PostgresKeyRepository):
    """What validation's transactions hand its handlers: the validation state, the health state and the
    participants' keys."""


# date_bin works on plain PostgreSQL (14+) and on TimescaleDB hypertables alike: one query for both stores.
_ROUND_SERIES = """
SELECT date_bin(make_interval(secs => $2), time, $5) AS bucket,
       count(*) AS rounds,
       count(*) FILTER (WHERE outcome = 'validated') AS validated,
       count(*) FILTER (WHERE outcome <> 'validated') AS unsuccessful,
       avg(duration_s) AS mean_duration_s,
       max(accuracy) AS best_accuracy,
       max(auc) AS best_auc
FROM round_metrics
WHERE federation_id = $1 AND time >= $3 AND time < $4
GROUP BY bucket ORDER BY bucket
"""

_PARTICIPANT_SERIES = """
SELECT date_bin(make_interval(secs => $2), time, $5) AS bucket, participant_id,
       count(*) FILTER (WHERE kind = 'accepted') AS accepted,
       count(*) FILTER (WHERE kind = 'rejected') AS rejected,
       max(epsilon) AS max_epsilon,
       avg(train_loss) AS mean_train_loss,
       max(latency_s) AS max_latency_s
FROM participant_metrics
WHERE federation_id = $1 AND time >= $3 AND time < $4
GROUP BY bucket, participant_id ORDER BY bucket, participant_id COLLATE "C"
"""


class PostgresMetricsSeries:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def rounds(self, federation_id: str, bucket_s: float, since: datetime, until: datetime) -> list[RoundBucket]:
        rows = await self.conn.fetch(_ROUND_SERIES, federation_id, bucket_s, since, until, EPOCH)
        return [RoundBucket(**dict(r)) for r in rows]

    async def participants(
        self, federation_id: str, bucket_s: float, since: datetime, until: datetime
    ) -> list[ParticipantBucket]:
        rows = await self.conn.fetch(_PARTICIPANT_SERIES, federation_id, bucket_s, since, until, EPOCH)
        return [ParticipantBucket(**dict(r)) for r in rows]
