"""Model specs, deterministic initial weights, parameter specs and numpy <-> torch conversion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from fedstream.ml.models import (
    ModelSpec,
    WeightsMismatchError,
    build_model,
    initial_weights,
    module_to_weights,
    num_parameters,
    param_specs,
    weights_to_module,
)

LOGISTIC = ModelSpec(architecture="logistic", input_dim=30)
MLP = ModelSpec(architecture="mlp", input_dim=20, hidden=(16, 8), init_seed=7)


# --- ModelSpec -----------------------------------------------------------------------------------


def test_spec_accepts_yaml_style_list_for_hidden() -> None:
    spec = ModelSpec.model_validate({"architecture": "mlp", "input_dim": 20, "hidden": [32]})
    assert spec.hidden == (32,)
    assert spec.output_dim == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"architecture": "mlp", "input_dim": 20},  # an mlp without hidden layers
        {"architecture": "logistic", "input_dim": 20, "hidden": [8]},  # a logistic model with one
        {"architecture": "mlp", "input_dim": 20, "hidden": [0]},
        {"architecture": "logistic", "input_dim": 0},
        {"architecture": "logistic", "input_dim": 20, "output_dim": 3},
        {"architecture": "logistic", "input_dim": "20"},  # strict: no string coercion
        {"architecture": "cnn", "input_dim": 20},
        {"architecture": "logistic", "input_dim": 20, "dropout": 0.1},  # unknown field
    ],
)
def test_spec_rejects_invalid_fields(fields: dict) -> None:
    with pytest.raises(ValidationError):
        ModelSpec.model_validate(fields)


def test_spec_is_frozen() -> None:
    with pytest.raises(ValidationError):
        LOGISTIC.input_dim = 3  # type: ignore[misc]


# --- initial weights and parameter specs -----------------------------------------------------------


def test_initial_weights_are_deterministic_per_seed() -> None:
    first, second = initial_weights(MLP), initial_weights(MLP)
    other = initial_weights(MLP.model_copy(update={"init_seed": 8}))
    assert all(np.array_equal(first[name], second[name]) for name in first)
    assert not all(np.array_equal(first[name], other[name]) for name in first)


def test_initial_weights_are_float32_within_default_init_bounds() -> None:
    weights = initial_weights(MLP)
    assert all(value.dtype == np.float32 for value in weights.values())
    assert np.abs(weights["0.weight"]).max() <= 1 / np.sqrt(20)
    assert np.abs(weights["2.weight"]).max() <= 1 / np.sqrt(16)


@pytest.mark.parametrize("spec", [LOGISTIC, MLP], ids=["logistic", "mlp"])
def test_param_specs_match_the_module_state_dict(spec: ModelSpec) -> None:
    state = build_model(spec).state_dict()
    assert [p.name for p in param_specs(spec)] == list(state)
    assert [p.shape for p in param_specs(spec)] == [tuple(t.shape) for t in state.values()]
    assert all(p.dtype == "float32" for p in param_specs(spec))
    assert num_parameters(spec) == sum(t.numel() for t in state.values())


def test_initial_weights_use_the_state_dict_names_and_shapes() -> None:
    weights = initial_weights(MLP)
    assert {name: value.shape for name, value in weights.items()} == {
        name: tuple(tensor.shape) for name, tensor in build_model(MLP).state_dict().items()
    }


def test_a_model_with_several_outputs_is_refused() -> None:
    # Training uses a binary loss on one logit: a multi-logit model must not get that far.
    with pytest.raises(ValueError, match="output_dim"):
        ModelSpec.model_validate({"architecture": "logistic", "input_dim": 4, "output_dim": 3})


def test_logistic_model_has_one_linear_layer() -> None:
    assert [p.name for p in param_specs(LOGISTIC)] == ["0.weight", "0.bias"]
    assert num_parameters(LOGISTIC) == 31


# --- build_model --------------------------------------------------------------------------------


def test_build_model_outputs_one_logit_per_row() -> None:
    module = build_model(MLP)
    assert module(torch.zeros(5, 20)).shape == (5, 1)


def test_build_model_holds_initial_weights_and_leaves_global_rng_alone() -> None:
    rng_state = torch.get_rng_state()
    module = build_model(MLP)
    assert torch.equal(torch.get_rng_state(), rng_state)
    for name, value in module_to_weights(module).items():
        np.testing.assert_array_equal(value, initial_weights(MLP)[name])


# --- conversion -----------------------------------------------------------------------------------


def test_weights_round_trip_through_a_module() -> None:
    weights = {name: value + 1.0 for name, value in initial_weights(MLP).items()}
    module = build_model(MLP)
    weights_to_module(module, weights)
    back = module_to_weights(module)
    for name in weights:
        np.testing.assert_array_equal(back[name], weights[name])
        assert isinstance(back[name], np.ndarray)
        assert back[name].dtype == np.float32 and back[name].flags.c_contiguous


def test_conversion_copies_instead_of_sharing_memory() -> None:
    weights = initial_weights(MLP)
    module = build_model(MLP)
    weights_to_module(module, weights)
    weights["0.bias"][:] = 99.0  # the caller's array changes after loading
    extracted = module_to_weights(module)
    extracted["0.weight"][:] = -99.0  # and the extracted copy is changed too
    state = module.state_dict()
    assert not torch.any(state["0.bias"] == 99.0)
    assert not torch.any(state["0.weight"] == -99.0)


def test_weights_to_module_rejects_missing_extra_and_misshaped_weights() -> None:
    module = build_model(LOGISTIC)
    good = initial_weights(LOGISTIC)
    missing = {"0.weight": good["0.weight"]}
    extra = {**good, "2.weight": np.zeros((1, 1), np.float32)}
    misshaped = {**good, "0.weight": np.zeros((1, 29), np.float32)}
    for bad in (missing, extra, misshaped):
        with pytest.raises(WeightsMismatchError):
            weights_to_module(module, bad)
