"""The round state machine, as pure decisions over plain values (no I/O, clock passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from schemas.base import BlobRef
from schemas.events import RejectionReason
from schemas.federation import CryptoApproach, FederationSpec


class RoundStatus(StrEnum):
    COLLECTING = "collecting"
    AGGREGATED = "aggregated"
    FAILED = "failed"


@dataclass(frozen=True)
class RoundState:
    federation_id: str
    round: int
    quorum: int
    deadline: datetime
    participants: tuple[str, ...]
    status: RoundStatus
    received: int = 0
    base_model: BlobRef | None = None  # the round's global model: central DP clips deltas against it


@dataclass(frozen=True)
class CentralPolicy:
    """DP-FedAvg settings of one federation; ``clip_norm`` is the current S (adaptive clipping moves it)."""

    noise_multiplier: float
    clip_norm: float
    adaptive: bool
    target_quantile: float
    clipping_learning_rate: float

    @classmethod
    def of(cls, spec: FederationSpec) -> "CentralPolicy | None":
        if spec.crypto is not CryptoApproach.DP or not spec.dp.central:
            return None
        dp = spec.dp
        return cls(dp.central_noise_multiplier, dp.central_clipping_norm, dp.adaptive_clipping, dp.target_quantile,
                   dp.clipping_learning_rate)


@dataclass(frozen=True)
class HeFederation:
    """An encrypted federation as the aggregator sees it: only ever a public context."""

    scheme: str  # "ckks" | "bfv"
    length: int  # values each update packs
    slots: int  # values per ciphertext
    fingerprint: str | None = None  # None until the custodian's HeContextPublished arrives
    public_context: BlobRef | None = None

    def weights(self, num_examples: list[int]) -> tuple[list[float | int], Literal["fraction", "integer"]]:
        """FedAvg weights as plaintext scalars: nₖ/N for CKKS (the sum is the average, its values stay
        small), the integers nₖ for BFV (exact; the custodian divides by N)."""
        total = sum(num_examples)
        if self.scheme == "ckks":
            return [n / total for n in num_examples], "fraction"
        return list(num_examples), "integer"


@dataclass(frozen=True)
class Close:
    """The round closes: aggregate what arrived."""

    closed_by: Literal["all_submitted", "deadline"]


@dataclass(frozen=True)
class Fail:
    """The deadline passed below quorum."""

    received: int


def admit(state: RoundState | None, participant_id: str) -> RejectionReason | None:
    """Whether a charged update may count in its round; the reason if not."""
    if state is None:
        return RejectionReason.UNKNOWN_ROUND
    if state.status is not RoundStatus.COLLECTING:
        return RejectionReason.ROUND_CLOSED
    if participant_id not in state.participants:
        return RejectionReason.NOT_SELECTED
    return None


def next_step(state: RoundState, now: datetime) -> Close | Fail | None:
    """Close early when every selected participant has submitted; at the deadline, close on quorum or fail."""
    if state.status is not RoundStatus.COLLECTING:
        return None
    if state.received >= len(state.participants):
        return Close("all_submitted")
    if now < state.deadline:
        return None
    if state.received >= state.quorum:
        return Close("deadline")
    return Fail(state.received)
