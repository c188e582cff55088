"""The model a federation trains: its spec, its parameters' names and shapes, and numpy <-> torch.

Weights travel between participants and services as ``dict[str, np.ndarray]`` (float32, keyed by the
module's ``state_dict`` names) so that nothing outside a participant's training step depends on torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from typing import TYPE_CHECKING

import numpy as np

from schemas.base import ParamSpec
from schemas.federation import ModelSpec

if TYPE_CHECKING:  # torch is imported where a module is built: the registry only needs the numpy init
    from torch import nn

__all__ = ["ModelSpec", "ParamSpec"]  # re-exported: the one definition lives in schemas/ (no torch there)

Weights = dict[str, np.ndarray]

WEIGHT_DTYPE = "float32"


class WeightsMismatchError(ValueError):
    """Weights whose names or shapes are not the ones the model spec defines."""


def layer_widths(spec: ModelSpec) -> tuple[int, ...]:
    """Input, hidden and output widths in order, e.g. (20, 32, 1)."""
    return (spec.input_dim, *spec.hidden, spec.output_dim)


def _linear_positions(spec: ModelSpec) -> range:
    # Linear layers sit at every other index of the Sequential (a ReLU between each pair), which is
    # what gives state_dict names such as "0.weight", "2.weight".
    return range(0, 2 * (len(layer_widths(spec)) - 1), 2)


def param_specs(spec: ModelSpec) -> tuple[ParamSpec, ...]:
    """The parameters of ``build_model(spec)`` in state_dict order, computed without building it."""
    widths = layer_widths(spec)
    specs: list[ParamSpec] = []
    for layer, position in enumerate(_linear_positions(spec)):
        fan_in, fan_out = widths[layer], widths[layer + 1]
        specs.append(ParamSpec(name=f"{position}.weight", dtype=WEIGHT_DTYPE, shape=(fan_out, fan_in)))
        specs.append(ParamSpec(name=f"{position}.bias", dtype=WEIGHT_DTYPE, shape=(fan_out,)))
    return tuple(specs)


def num_parameters(spec: ModelSpec) -> int:
    return sum(param.size for param in param_specs(spec))


def initial_weights(spec: ModelSpec) -> Weights:
    """Deterministic starting weights from ``spec.init_seed``.

    Same distribution as PyTorch's default Linear init (uniform in ±1/sqrt(fan_in) for weight and
    bias), but drawn from a numpy generator seeded by the spec, so every party derives the same round-0
    model and nobody touches torch's global RNG.
    """
    rng = np.random.default_rng(spec.init_seed)
    widths = layer_widths(spec)
    weights: Weights = {}
    for layer, position in enumerate(_linear_positions(spec)):
        fan_in, fan_out = widths[layer], widths[layer + 1]
        bound = 1.0 / math.sqrt(fan_in)
        weights[f"{position}.weight"] = _uniform(rng, bound, (fan_out, fan_in))
        weights[f"{position}.bias"] = _uniform(rng, bound, (fan_out,))
    return weights


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def build_model(spec: ModelSpec) -> nn.Sequential:
    """A plain Sequential of Linear/ReLU ending in one logit, holding ``initial_weights(spec)``."""
    from torch import nn

    widths = layer_widths(spec)
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        # skip_init: the weights are overwritten below, and default init would draw from torch's
        # global RNG.
        layers.append(nn.utils.skip_init(nn.Linear, fan_in, fan_out))
        layers.append(nn.ReLU())
    module = nn.Sequential(*layers[:-1])  # no activation after the logit
    weights_to_module(module, initial_weights(spec))
    return module


def weights_to_module(module: nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Load numpy weights into ``module`` (copied), refusing missing, extra or mis-shaped tensors."""
    import torch

    expected = {name: tuple(tensor.shape) for name, tensor in module.state_dict().items()}
    check_weights(weights, expected)
    state = {name: torch.tensor(np.asarray(value, dtype=np.float32)) for name, value in weights.items()}
    module.load_state_dict(state, strict=True)


def module_to_weights(module: nn.Module) -> Weights:
    """Contiguous float32 numpy copies of the module's state, so no tensor memory is shared."""
    return {
        name: np.array(tensor.detach().cpu().numpy(), dtype=np.float32, order="C", copy=True)
        for name, tensor in module.state_dict().items()
    }


def check_weights(weights: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]) -> None:
    """Raise WeightsMismatchError unless ``weights`` has exactly the expected names and shapes."""
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise WeightsMismatchError(f"weight names differ: missing {missing}, unexpected {extra}")
    for name, shape in expected.items():
        actual = tuple(np.shape(weights[name]))
        if actual != tuple(shape):
            raise WeightsMismatchError(f"{name}: expected shape {tuple(shape)}, got {actual}")


def check_weights_for_spec(spec: ModelSpec, weights: Mapping[str, np.ndarray]) -> None:
    check_weights(weights, {param.name: param.shape for param in param_specs(spec)})
