"""Aggregation rules as small pure numpy functions (in the spirit of flower's strategy/aggregate.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Weights = dict[str, np.ndarray]


class RunningWeightedSum:
    """Σ nₖ·wₖ and Σ nₖ accumulated one update at a time, in float64, so a round of many large
    updates never holds more than one of them in memory."""

    def __init__(self) -> None:
        self.sums: dict[str, np.ndarray] = {}
        self.dtypes: dict[str, np.dtype] = {}
        self.total = 0

    def add(self, update: Weights, num_examples: int) -> None:
        if num_examples <= 0:
            raise ValueError("example counts must be positive")
        if self.sums and update.keys() != self.sums.keys():
            raise ValueError("updates disagree on tensor names")
        for name, value in update.items():
            if name not in self.sums:
                self.sums[name], self.dtypes[name] = np.zeros(value.shape, np.float64), value.dtype
            self.sums[name] += value.astype(np.float64, copy=False) * num_examples
        self.total += num_examples

    def average(self) -> Weights:
        if self.total == 0:
            raise ValueError("need at least one update")
        return {name: (s / self.total).astype(self.dtypes[name]) for name, s in self.sums.items()}


def weighted_average(updates: Sequence[Weights], num_examples: Sequence[int]) -> Weights:
    """Example-weighted FedAvg (McMahan et al. 2017): Σ nₖ·wₖ / Σ nₖ."""
    if not updates or len(updates) != len(num_examples):
        raise ValueError("need one example count per update, and at least one update")
    running = RunningWeightedSum()
    for update, n in zip(updates, num_examples):
        running.add(update, n)
    return running.average()
