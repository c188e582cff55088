"""Local training and holdout evaluation at one participant.

``train_local`` is assembled from small steps (``make_loader``, ``make_optimizer``, ``run_epochs``) and
takes an optional ``prepare`` hook with Opacus's ``PrivacyEngine.make_private`` shape, ``(module,
optimizer, loader) -> (module, optimizer, loader)``: DP-SGD plugs in there without touching this code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fedstream.ml.dataset import LocalDataset
from fedstream.ml.models import ModelSpec, Weights, build_model, module_to_weights, weights_to_module

PrepareTraining: TypeAlias = Callable[
    [nn.Module, torch.optim.Optimizer, DataLoader],
    tuple[nn.Module, torch.optim.Optimizer, DataLoader],
]


class TrainConfig(BaseModel):
    """How a participant trains in one round. Vary ``seed`` per round and site so that batch orders
    differ between rounds while any single round stays reproducible."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)

    local_epochs: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    batch_size: int = Field(default=32, ge=1)
    seed: int


@dataclass(frozen=True)
class TrainResult:
    weights: Weights
    num_examples: int
    train_loss: float  # mean per-example loss over the last local epoch, measured while training


@dataclass(frozen=True)
class EvalResult:
    num_examples: int
    loss: float
    accuracy: float
    # None when the holdout holds one class only: AUC is undefined there, so the result falls back to
    # accuracy alone (NaN would poison averages and does not serialise to JSON).
    auc: float | None


def limit_torch_threads(n: int) -> int:
    """Cap torch's intra-op threads (e.g. 15 simulated participants sharing 2 cores, where threads
    only fight each other) and return the previous setting. Process-wide, so callers opt in."""
    if n < 1:
        raise ValueError(f"thread count must be at least 1, got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


# --- training steps (each replaceable by a DP variant) ------------------------------------------------


def make_loader(data: LocalDataset, batch_size: int, generator: torch.Generator) -> DataLoader:
    """Shuffled mini-batches of the train split; the generator alone decides the order."""
    dataset = TensorDataset(torch.tensor(data.x_train), torch.tensor(data.y_train).unsqueeze(1))
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator)


def make_optimizer(module: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    # Plain SGD: what FedAvg's analysis assumes and what DP-SGD clips and noises.
    return torch.optim.SGD(module.parameters(), lr=config.learning_rate)


def run_epochs(
    module: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader, epochs: int
) -> float:
    """Train for ``epochs`` passes; return the mean per-example loss of the last pass."""
    loss_fn = nn.BCEWithLogitsLoss()
    module.train()
    epoch_loss = 0.0
    for _ in range(epochs):
        loss_sum, seen = 0.0, 0
        for features, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(module(features), labels)
            loss.backward()
            optimizer.step()
            # Weighted by batch size so a short last batch (or DP's Poisson-sized batches) counts right.
            # A Poisson batch may be empty: its mean loss is NaN but it still takes its noisy step (the
            # privacy analysis counts every step), and it adds nothing to the reported loss.
            if len(labels):
                loss_sum += loss.item() * len(labels)
                seen += len(labels)
        epoch_loss = loss_sum / max(seen, 1)
    return epoch_loss


def train_local(
    spec: ModelSpec,
    weights: Weights,
    data: LocalDataset,
    config: TrainConfig,
    *,
    prepare: PrepareTraining | None = None,
) -> TrainResult:
    """Start from ``weights``, train on ``data``'s train split, return the new weights.

    Deterministic for a given ``config.seed``: shuffling uses a local torch.Generator, never the
    global RNG. ``prepare`` may wrap module, optimizer and loader (e.g. Opacus DP-SGD).
    """
    module = build_model(spec)
    weights_to_module(module, weights)
    generator = torch.Generator().manual_seed(config.seed)
    loader = make_loader(data, config.batch_size, generator)
    optimizer = make_optimizer(module, config)
    trained: nn.Module = module
    if prepare is not None:
        trained, optimizer, loader = prepare(module, optimizer, loader)
    train_loss = run_epochs(trained, optimizer, loader, config.local_epochs)
    # Read from the unwrapped module: a wrapper (Opacus's GradSampleModule) shares its parameters but
    # prefixes their state_dict names.
    return TrainResult(module_to_weights(module), num_examples=data.num_train, train_loss=train_loss)


# --- evaluation --------------------------------------------------------------------------------------


def predict_logits(spec: ModelSpec, weights: Weights, x: np.ndarray) -> np.ndarray:
    module = build_model(spec)
    weights_to_module(module, weights)
    module.eval()
    with torch.no_grad():
        return module(torch.tensor(np.asarray(x, dtype=np.float32))).squeeze(1).numpy()


def evaluate(spec: ModelSpec, weights: Weights, data: LocalDataset) -> EvalResult:
    """Loss, accuracy (logit > 0, i.e. probability > 0.5) and AUC of ``weights`` on the holdout."""
    logits = predict_logits(spec, weights, data.x_holdout)
    labels = data.y_holdout
    loss = nn.functional.binary_cross_entropy_with_logits(torch.tensor(logits), torch.tensor(labels))
    accuracy = float(np.mean((logits > 0) == (labels == 1)))
    return EvalResult(len(labels), loss=float(loss), accuracy=accuracy, auc=_auc(labels, logits))


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if len(np.unique(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))
