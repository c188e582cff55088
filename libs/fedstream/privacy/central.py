"""Central DP at the aggregator: DP-FedAvg (McMahan et al. 2018), as pure numpy functions.

Each participant's update delta (its weights minus the round's global weights) is clipped to L2 norm
S over all tensors together; the clipped deltas are summed, N(0, (σS)²) is added to every coordinate
of the sum, and the noisy sum is divided by the number of contributions (the fixed-denominator
estimator: the denominator must not depend on data the noise does not cover). One participant then
changes the sum by at most S, so the round is a Gaussian mechanism with noise multiplier σ at the
participant level, accountable like any ``SampledGaussian``.

Noise comes from a ``NoiseSource`` passed in: tests pass a seeded ``numpy.random.Generator``;
production passes ``SystemNoise``, whose every draw comes from the operating system's CSPRNG
(``os.urandom``). A PRNG such as PCG64 seeded from ``secrets`` would have an unpredictable seed but
predictable output once its state leaks (PCG64 is not a cryptographic generator); drawing the
uniforms themselves from the OS costs a few milliseconds per million coordinates. Known limit: the
normal deviates are IEEE doubles (Mironov 2012's floating-point attack targets such samplers); a
discrete Gaussian would close it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.special import ndtri

Weights = Mapping[str, np.ndarray]


class NoiseSource(Protocol):
    """The slice of ``numpy.random.Generator`` the mechanisms need."""

    def normal(self, loc: float, scale: float, size: tuple[int, ...]) -> np.ndarray: ...


class SystemNoise:
    """Gaussian noise whose randomness comes from ``os.urandom`` (the kernel CSPRNG).

    Inverse-CDF sampling: 53 random bits per uniform in (0, 1), mapped through Φ⁻¹.
    """

    def normal(self, loc: float, scale: float, size: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(size, dtype=np.int64))
        bits = np.frombuffer(os.urandom(8 * count), dtype=np.uint64) >> np.uint64(11)
        uniform = (bits.astype(np.float64) + 0.5) / float(1 << 53)  # never exactly 0 or 1
        return (loc + scale * ndtri(uniform)).reshape(size)


def global_norm(delta: Weights) -> float:
    """L2 norm of all tensors of an update together (what one clipping norm bounds)."""
    return math.sqrt(sum(float(np.sum(np.square(t, dtype=np.float64))) for t in delta.values()))


def clip(delta: Weights, clip_norm: float) -> tuple[dict[str, np.ndarray], float]:
    """Scale ``delta`` down to norm ≤ ``clip_norm`` (never up); returns it and its norm before clipping."""
    if clip_norm <= 0:
        raise ValueError(f"clipping norm must be > 0, got {clip_norm}")
    norm = global_norm(delta)
    factor = min(1.0, clip_norm / norm) if norm > 0 else 1.0
    return {k: (np.asarray(t, np.float64) * factor) for k, t in delta.items()}, norm


def difference(weights: Weights, base: Weights) -> dict[str, np.ndarray]:
    """The update delta a participant's weights make to the global ``base``."""
    return {k: np.asarray(weights[k], np.float64) - np.asarray(base[k], np.float64) for k in base}


@dataclass(frozen=True)
class CentralRound:
    """What DP-FedAvg did in one round: the noisy mean delta and what the ledger and dashboards need."""

    mean_delta: dict[str, np.ndarray]
    clip_norm: float
    noise_stddev: float  # σS, on the sum
    norms: tuple[float, ...]  # each update's norm before clipping

    @property
    def fraction_clipped(self) -> float:
        return sum(n > self.clip_norm for n in self.norms) / len(self.norms)


def noisy_sum(clipped: Sequence[Weights], noise_stddev: float, rng: NoiseSource) -> dict[str, np.ndarray]:
    """Σ clipped deltas + N(0, noise_stddev²) per coordinate."""
    total = {k: np.sum([np.asarray(d[k], np.float64) for d in clipped], axis=0) for k in clipped[0]}
    return {k: t + rng.normal(0.0, noise_stddev, t.shape) for k, t in total.items()}


def dp_fedavg(
    base: Weights, updates: Sequence[Weights], clip_norm: float, noise_multiplier: float, rng: NoiseSource
) -> tuple[dict[str, np.ndarray], CentralRound]:
    """New global weights = base + (Σ clip(wᵢ − base, S) + N(0, (σS)²)) / n."""
    if not updates:
        raise ValueError("DP-FedAvg needs at least one update")
    if noise_multiplier < 0:
        raise ValueError(f"noise multiplier must be >= 0, got {noise_multiplier}")
    clipped, norms = zip(*(clip(difference(w, base), clip_norm) for w in updates), strict=True)
    stddev = noise_multiplier * clip_norm
    mean = {k: t / len(updates) for k, t in noisy_sum(clipped, stddev, rng).items()}
    new = {k: (np.asarray(base[k], np.float64) + mean[k]).astype(np.asarray(base[k]).dtype) for k in base}
    return new, CentralRound(mean, clip_norm, stddev, tuple(norms))
