"""What the registry decides after each round outcome, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.base import BlobRef
from schemas.events import CompletionReason
from schemas.federation import FederationSpec


@dataclass(frozen=True)
class FederationState:
    federation_id: str
    spec: FederationSpec
    current_round: int
    latest_version: int
    latest_model: BlobRef
    completed: bool
    # participants whose privacy budget is spent: never selected again in this federation
    excluded: frozenset[str] = frozenset()

    @property
    def selectable(self) -> tuple[str, ...]:
        return tuple(p for p in self.spec.participant_ids if p not in self.excluded)


@dataclass(frozen=True)
class OpenNext:
    round: int


@dataclass(frozen=True)
class Complete:
    reason: CompletionReason


def after_round(state: FederationState, converged: bool = False, target_reached: bool = False) -> OpenNext | Complete:
    """Stop on convergence, on the target metric, or when the round budget is spent; else open the next."""
    if target_reached:
        return Complete(CompletionReason.TARGET_REACHED)
    if converged:
        return Complete(CompletionReason.CONVERGED)
    if state.current_round >= state.spec.training.rounds:
        return Complete(CompletionReason.ROUND_BUDGET)
    if len(state.selectable) < state.spec.training.quorum:
        return Complete(CompletionReason.PRIVACY_BUDGETS_EXHAUSTED)
    return OpenNext(state.current_round + 1)


def is_current(state: FederationState | None, round_number: int) -> bool:
    """Outcomes of rounds other than the current one (late, replayed) change nothing."""
    return state is not None and not state.completed and state.current_round == round_number
