"""Aggregation rules as small pure numpy functions (in the spirit of flower's strategy/aggregate.py)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Weights = dict[str, np.ndarray]


def weighted_average(updates: Sequence[Weights], num_examples: Sequence[int]) -> Weights:
    """Example-weighted FedAvg (McMahan et al. 2017): Σ nₖ·wₖ / Σ nₖ, accumulated in float64."""
    if not updates or len(updates) != len(num_examples):
        raise ValueError("need one example count per update, and at least one update")
    if any(n <= 0 for n in num_examples):
        raise ValueError("example counts must be positive")
    total = float(sum(num_examples))
    names = updates[0].keys()
    result: Weights = {}
    for name in names:
        acc = np.zeros(updates[0][name].shape, dtype=np.float64)
        for update, n in zip(updates, num_examples):
            acc += update[name].astype(np.float64, copy=False) * (n / total)
        result[name] = acc.astype(updates[0][name].dtype)
    return result
