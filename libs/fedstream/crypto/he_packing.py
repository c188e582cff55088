"""Model weights ↔ one flat vector, in the model's declared tensor order (what HE packs into slots)."""

from __future__ import annotations

import numpy as np

from schemas.base import ParamSpec

Weights = dict[str, np.ndarray]


def flatten(weights: Weights, specs: tuple[ParamSpec, ...]) -> np.ndarray:
    """Concatenate the tensors in ``specs`` order as float64 (names and shapes must match exactly)."""
    if set(weights) != {s.name for s in specs}:
        raise ValueError("tensor names differ from the model's")
    parts = []
    for s in specs:
        array = np.asarray(weights[s.name])
        if tuple(array.shape) != s.shape:
            raise ValueError(f"{s.name}: shape {array.shape}, expected {s.shape}")
        parts.append(array.astype(np.float64, copy=False).ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def unflatten(flat: np.ndarray, specs: tuple[ParamSpec, ...]) -> Weights:
    if len(flat) != total_size(specs):
        raise ValueError(f"{len(flat)} values for a model of {total_size(specs)}")
    out, offset = {}, 0
    for s in specs:
        out[s.name] = np.asarray(flat[offset : offset + s.size]).reshape(s.shape).astype(s.dtype)
        offset += s.size
    return out


def total_size(specs: tuple[ParamSpec, ...]) -> int:
    return sum(s.size for s in specs)
