"""The mechanism every charge describes: the Poisson-subsampled Gaussian mechanism, run ``steps`` times.

DP-SGD (each step: sample each record with probability ``sample_rate``, clip per-sample gradients to
C, add N(0, (σC)²)) and DP-FedAvg (each round: sample participants, clip each update to S, add
N(0, (σS)²) to the sum) are both this mechanism; only the unit of privacy differs (a record, or a
participant). ε is a function of (σ, q, steps, δ) alone — never of a number a participant reports.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from fedstream.privacy.errors import InvalidMechanism


@dataclass(frozen=True)
class SampledGaussian:
    noise_multiplier: float  # σ: noise standard deviation divided by the clipping norm
    sample_rate: float  # q: Poisson sampling probability of one record (or participant) per step
    steps: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier > 0):
            raise InvalidMechanism(f"noise multiplier must be finite and > 0, got {self.noise_multiplier}")
        if not (0 < self.sample_rate <= 1):
            raise InvalidMechanism(f"sample rate must be in (0, 1], got {self.sample_rate}")
        if self.steps < 0:
            raise InvalidMechanism(f"steps must be >= 0, got {self.steps}")


def compacted(mechanisms: Iterable[SampledGaussian]) -> tuple[SampledGaussian, ...]:
    """Merge runs of the same (σ, q): composing k then m steps is composing k + m steps.

    Exact for both accountants, and it keeps a long ledger history cheap to recompute (a PLD
    convolution per distinct mechanism, not per round). Sorted by (σ, q), so the result — and the
    floating-point ε computed from it — does not depend on the order a ledger returns its rows in.
    """
    steps: dict[tuple[float, float], int] = defaultdict(int)
    for m in mechanisms:
        steps[(m.noise_multiplier, m.sample_rate)] += m.steps
    return tuple(SampledGaussian(sigma, q, n) for (sigma, q), n in sorted(steps.items()) if n > 0)
