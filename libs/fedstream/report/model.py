"""What a report shows, as plain frozen data: no database rows, no matplotlib objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class RoundPoint:
    """One round as the registry's ``round_status`` view sees it."""

    round: int
    status: str  # open | aggregated | validated | failed | rejected | released
    metric: float | None  # the federation's validation metric (auc or accuracy) of the round's model
    loss: float | None  # federated evaluation loss of the round's model
    duration_s: float | None  # opened → released/rejected/failed; None while the round is still going


@dataclass(frozen=True)
class EpsilonPoint:
    """The cumulative ε the privacy ledger charged a participant once its update of ``round`` counted."""

    participant_id: str
    round: int
    epsilon: float


@dataclass(frozen=True)
class ParticipantHealth:
    participant_id: str
    accepted: int
    rejected: int
    rejection_reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportData:
    federation_id: str
    project_name: str
    state: str  # "training" or "completed (<reason>)"
    metric_name: str
    generated_at: datetime
    rounds: tuple[RoundPoint, ...]
    epsilon: tuple[EpsilonPoint, ...]  # empty: no DP mechanism charged ε in this federation
    health: tuple[ParticipantHealth, ...]
