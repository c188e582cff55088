from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from services.validation.ports import Candidate
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
