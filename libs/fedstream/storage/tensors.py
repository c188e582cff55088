"""Tensors on the wire: safetensors bytes (no pickle), checked against the model's declared specs."""

from __future__ import annotations

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from schemas.base import ParamSpec

Weights = dict[str, np.ndarray]


class TensorError(ValueError):
    """Base for tensors that cannot be used; ``reason`` is machine-readable."""

    reason = "malformed_tensors"


class MalformedTensors(TensorError):
    reason = "malformed_tensors"


class ShapeMismatch(TensorError):
    reason = "shape_mismatch"


class NonFiniteValues(TensorError):
    reason = "non_finite"


def to_bytes(weights: Weights) -> bytes:
    return st_save({name: np.ascontiguousarray(a) for name, a in weights.items()})


def from_bytes(data: bytes) -> Weights:
    try:
        return st_load(data)
    except (SafetensorError, ValueError, TypeError) as exc:  # safetensors raises these on bad headers
        raise MalformedTensors(f"not a safetensors payload: {exc}") from None


def check_against(weights: Weights, specs: tuple[ParamSpec, ...]) -> None:
    """Names, dtypes and shapes must equal the global model's exactly; every value must be finite."""
    expected = {s.name: s for s in specs}
    if set(weights) != set(expected):
        missing, extra = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
        raise ShapeMismatch(f"tensor names differ: missing {missing[:5]}, unexpected {extra[:5]}")
    for name, spec in expected.items():
        array = weights[name]
        if str(array.dtype) != spec.dtype or tuple(array.shape) != spec.shape:
            raise ShapeMismatch(
                f"{name}: got {array.dtype}{list(array.shape)}, expected {spec.dtype}{list(spec.shape)}"
            )
        if not np.isfinite(array).all():
            raise NonFiniteValues(f"{name} contains NaN or infinite values")


def specs_of(weights: Weights) -> tuple[ParamSpec, ...]:
    return tuple(
        ParamSpec(name=name, dtype=str(a.dtype), shape=tuple(int(d) for d in a.shape))
        for name, a in sorted(weights.items())
    )
