"""Participant-side DP-SGD with Opacus, plugged into ``train_local(prepare=...)``.

Opacus does the mechanism (Poisson sampling of records, per-sample gradient clipping to C, Gaussian
noise σC on each step's sum); this module builds the ``prepare`` hook and reports what actually ran
— σ, the sample rate and the number of noisy steps as Opacus's own accountant recorded them — so
the accounting service can recompute ε itself. A participant never reports only an ε.

Randomness: Poisson sampling uses the loader's generator (seeded per round by ``train_local``, so a
round is reproducible); the noise uses its own torch generator, seeded from ``secrets`` unless a
test fixes it. Opacus's ``secure_mode`` (a CSPRNG stream) needs ``torchcsprng``, which has no
build for current torch; an unpredictable seed per round is the available substitute.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass

import torch
from opacus import PrivacyEngine
from torch import nn
from torch.utils.data import DataLoader

from fedstream.privacy.mechanism import SampledGaussian
from schemas.events import DpParameters


@dataclass(frozen=True)
class DpSgdConfig:
    noise_multiplier: float  # σ
    max_grad_norm: float  # C, the per-sample clipping norm
    delta: float
    dataset_id: str
    noise_seed: int | None = None  # None: drawn from the OS CSPRNG for every round


class DpSgdRun:
    """One round of DP-SGD: pass ``prepare`` to ``train_local``, then read ``parameters()``."""

    def __init__(self, config: DpSgdConfig) -> None:
        self.config = config
        with warnings.catch_warnings():  # "secure RNG turned off": a known, documented choice (module docstring)
            warnings.filterwarnings("ignore", message="Secure RNG turned off")
            self.engine = PrivacyEngine(accountant="rdp")
        self.optimizer: torch.optim.Optimizer | None = None

    def prepare(
        self, module: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader
    ) -> tuple[nn.Module, torch.optim.Optimizer, DataLoader]:
        seed = self.config.noise_seed if self.config.noise_seed is not None else secrets.randbits(63)
        private_module, private_optimizer, private_loader = self.engine.make_private(
            module=module, optimizer=optimizer, data_loader=loader, noise_multiplier=self.config.noise_multiplier,
            max_grad_norm=self.config.max_grad_norm, poisson_sampling=True,
            noise_generator=torch.Generator().manual_seed(seed),
        )
        self.optimizer = private_optimizer
        return private_module, private_optimizer, private_loader

    def mechanism(self) -> SampledGaussian:
        """What ran, from Opacus's accountant (one entry per (σ, q) it saw, with its step count)."""
        history = self.engine.accountant.history
        if not history:
            raise RuntimeError("DP-SGD has not taken a step yet: train with this run's prepare first")
        if len(history) != 1:
            raise RuntimeError(f"expected one mechanism per round, Opacus recorded {len(history)}")
        sigma, sample_rate, steps = history[0]
        return SampledGaussian(float(sigma), float(sample_rate), int(steps))

    def parameters(self) -> DpParameters:
        m = self.mechanism()
        return DpParameters(
            noise_multiplier=m.noise_multiplier, sample_rate=m.sample_rate, steps=m.steps,
            clipping_norm=float(self.config.max_grad_norm), delta=float(self.config.delta), dataset_id=self.config.dataset_id,
        )


def opacus_round_shape(num_examples: int, batch_size: int, local_epochs: int) -> tuple[float, int]:
    """(sample rate, steps) Opacus will use: q = 1 / ceil(N / B) batches, ceil(N / B) steps per epoch."""
    if num_examples < 1 or batch_size < 1 or local_epochs < 1:
        raise ValueError("examples, batch size and epochs must all be at least 1")
    batches = -(-num_examples // batch_size)
    return 1.0 / batches, local_epochs * batches


def plan_noise(
    num_examples: int, batch_size: int, local_epochs: int, rounds: int, target_epsilon: float, delta: float
) -> float:
    """σ for a participant that will train ``rounds`` rounds like this one and must stay within ε."""
    from fedstream.privacy.planning import plan_noise_multiplier

    sample_rate, steps = opacus_round_shape(num_examples, batch_size, local_epochs)
    return plan_noise_multiplier(target_epsilon, delta, sample_rate, steps, rounds)


def train_private(spec, weights, data, config, dp: DpSgdConfig):  # noqa: ANN001, ANN201 - train_local's types
    """``train_local`` under DP-SGD; returns its result and the mechanism's parameters."""
    from fedstream.ml.training import train_local

    run = DpSgdRun(dp)
    result = train_local(spec, weights, data, config, prepare=run.prepare)
    return result, run.parameters()
