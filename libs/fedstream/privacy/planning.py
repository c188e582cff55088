"""Noise planning: the smallest noise multiplier whose planned training stays within a target ε.

A participant plans once per round from what it will have spent by the end of the federation:
``rounds`` rounds of ``steps_per_round`` DP-SGD steps at ``sample_rate``, composed after whatever is
already in its ledger (``prior``). Planning uses the RDP bound by default: it is fast (a bisection
evaluates it ~30 times) and never below the PLD bound, so the ledger — which charges the tighter of
the two — never finds a planned run over budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from fedstream.privacy.accountant import rdp_epsilon
from fedstream.privacy.errors import UnreachableBudget
from fedstream.privacy.mechanism import SampledGaussian

EpsilonOf = Callable[[Sequence[SampledGaussian], float], float]


def plan_noise_multiplier(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps_per_round: int,
    rounds: int,
    *,
    prior: Sequence[SampledGaussian] = (),
    epsilon_of: EpsilonOf = rdp_epsilon,
    low: float = 0.3,
    high: float = 500.0,
    tolerance: float = 1e-3,
) -> float:
    """Bisection on σ: ε(prior + rounds × steps at σ) ≤ target, to a relative tolerance on σ.

    Returns the upper end of the final bracket, so the result always satisfies the target.
    """
    if target_epsilon <= 0 or rounds < 1 or steps_per_round < 1:
        raise ValueError("target ε, rounds and steps per round must be positive")

    def fits(sigma: float) -> bool:
        planned = SampledGaussian(sigma, sample_rate, steps_per_round * rounds)
        return epsilon_of([*prior, planned], delta) <= target_epsilon

    if not fits(high):
        raise UnreachableBudget(
            f"even σ = {high} spends more than ε = {target_epsilon} over {rounds} rounds (spent already: {len(prior)} charges)"
        )
    if fits(low):
        return low
    while high / low > 1 + tolerance:
        mid = math.sqrt(low * high)  # σ spans orders of magnitude: bisect geometrically
        low, high = (low, mid) if fits(mid) else (mid, high)
    return high
