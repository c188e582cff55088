"""PostgreSQL adapter of validation's state (infra/migrations/006_validation.sql)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.validation.ports import Candidate
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
