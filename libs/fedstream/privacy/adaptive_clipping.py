"""Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy 2021, "DP learning with adaptive clipping").

Instead of guessing S, track the γ-quantile of update norms: each round every participant also
reports one bit bᵢ = [‖Δᵢ‖ ≤ S]; the server estimates the fraction b̄ (with its own Gaussian noise,
σ_b, since the bits are data too) and moves S geometrically:

    S ← S · exp(−η (b̄ − γ))

Too many updates under S (b̄ > γ) shrinks S, too few grows it. Because the bits cost privacy too, the
update's noise multiplier is raised so the pair (sum, count) together matches the target σ:
σ_Δ = (σ⁻² − (2σ_b)⁻²)^(−1/2) (the paper's Theorem 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedstream.privacy.central import NoiseSource


@dataclass(frozen=True)
class QuantileClipping:
    clip_norm: float  # the current S
    target_quantile: float = 0.5  # γ
    learning_rate: float = 0.2  # η (the paper's default for geometric updates)
    count_noise_stddev: float = 0.0  # σ_b on the count of unclipped updates

    def __post_init__(self) -> None:
        if self.clip_norm <= 0 or not (0 < self.target_quantile < 1) or self.learning_rate <= 0:
            raise ValueError("clip norm and learning rate must be > 0, target quantile in (0, 1)")
        if self.count_noise_stddev < 0:
            raise ValueError("count noise must be >= 0")


def unclipped_fraction(norms: Sequence[float], clip_norm: float, count_noise_stddev: float, rng: NoiseSource) -> float:
    """b̄ = (Σ [‖Δᵢ‖ ≤ S] + N(0, σ_b²)) / n — the privatised fraction of updates left unclipped."""
    if not norms:
        raise ValueError("no update norms to adapt to")
    count = float(sum(n <= clip_norm for n in norms))
    noise = float(np.asarray(rng.normal(0.0, count_noise_stddev, (1,)))[0]) if count_noise_stddev > 0 else 0.0
    return (count + noise) / len(norms)


def next_clip_norm(state: QuantileClipping, norms: Sequence[float], rng: NoiseSource) -> QuantileClipping:
    """One geometric step of S toward the γ-quantile of this round's norms."""
    fraction = unclipped_fraction(norms, state.clip_norm, state.count_noise_stddev, rng)
    clip_norm = state.clip_norm * math.exp(-state.learning_rate * (fraction - state.target_quantile))
    return QuantileClipping(clip_norm, state.target_quantile, state.learning_rate, state.count_noise_stddev)


def update_noise_multiplier(total_noise_multiplier: float, count_noise_stddev: float) -> float:
    """σ_Δ for the sum such that sum and count together are as private as one mechanism with σ."""
    if count_noise_stddev <= 0:
        return total_noise_multiplier
    remainder = total_noise_multiplier ** -2 - (2 * count_noise_stddev) ** -2
    if remainder <= 0:
        raise ValueError(
            f"count noise σ_b = {count_noise_stddev} spends the whole budget of σ = {total_noise_multiplier}; "
            "raise σ_b above σ/2"
        )
    return remainder ** -0.5
