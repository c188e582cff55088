from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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
