"""DP-SGD with Opacus through train_local's prepare hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedstream.ml.dataset import LocalDataset
from fedstream.ml.models import build_model, module_to_weights
from fedstream.ml.training import TrainConfig, make_loader, make_optimizer, train_local
from fedstream.privacy.dp_sgd import DpSgdConfig, DpSgdRun, opacus_round_shape
from schemas.federation import ModelSpec

SPEC = ModelSpec(architecture="mlp", input_dim=4, hidden=(8,))


def dataset(n: int, seed: int = 0) -> LocalDataset:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)) * 20  # large inputs: large per-sample gradients that must be clipped
    y = (x[:, 0] > 0).astype(np.float32)
    return LocalDataset(x, y, x[:4], y[:4], site=0, name="toy")


def dp(sigma: float = 1.0, c: float = 0.5) -> DpSgdConfig:
    return DpSgdConfig(noise_multiplier=sigma, max_grad_norm=c, delta=1e-5, dataset_id="toy", noise_seed=3)


def test_per_sample_gradients_are_clipped_to_c():
    c = 0.5
    data = dataset(64)
    module = build_model(SPEC)
    config = TrainConfig(local_epochs=1, learning_rate=0.1, batch_size=16, seed=1)
    run = DpSgdRun(dp(sigma=0.0 + 1e-9, c=c))
    private, optimizer, loader = run.prepare(module, make_optimizer(module, config), make_loader(data, 16, torch.Generator().manual_seed(1)))
    features, labels = next(iter(loader))
    assert len(labels) > 0
    nn.BCEWithLogitsLoss()(private(features), labels).backward()
    optimizer.pre_step()  # Opacus clips and accumulates here (then adds noise)

    # Independently: each example's own gradient, by a per-example backward on a plain copy.
    reference = build_model(SPEC)
    reference.load_state_dict({k.removeprefix("_module."): v for k, v in private.state_dict().items()})
    raw_norms, clipped = [], []
    for i in range(len(labels)):
        reference.zero_grad()
        nn.BCEWithLogitsLoss(reduction="sum")(reference(features[i : i + 1]), labels[i : i + 1]).backward()
        grads = [p.grad.detach().clone() for p in reference.parameters()]
        norm = torch.sqrt(sum((g**2).sum() for g in grads)).item()
        raw_norms.append(norm)
        clipped.append([g * min(1.0, c / (norm + 1e-6)) for g in grads])
    assert max(raw_norms) > c  # clipping had something to do
    for per_example in clipped:
        assert torch.sqrt(sum((g**2).sum() for g in per_example)).item() <= c + 1e-6
    # What Opacus summed is exactly those clipped gradients (so no example contributed more than C).
    for p, expected in zip(private.parameters(), zip(*clipped, strict=True), strict=True):
        torch.testing.assert_close(p.summed_grad, torch.stack(expected).sum(0), rtol=1e-4, atol=1e-5)


def test_a_round_reports_the_mechanism_opacus_ran():
    data = dataset(100)
    run = DpSgdRun(dp())
    weights = module_to_weights(build_model(SPEC))
    result = train_local(SPEC, weights, data, TrainConfig(local_epochs=2, learning_rate=0.1, batch_size=10, seed=4), prepare=run.prepare)
    params = run.parameters()
    assert (params.sample_rate, params.steps) == pytest.approx(opacus_round_shape(100, 10, 2))
    assert params.noise_multiplier == 1.0 and params.clipping_norm == 0.5 and params.dataset_id == "toy"
    assert all(np.isfinite(w).all() for w in result.weights.values())
    assert any(not np.allclose(result.weights[k], weights[k]) for k in weights)


def test_empty_poisson_batches_still_take_their_noisy_step():
    data = dataset(4)  # batch size 1 → q = 1/4: some of the 40 Poisson batches are empty
    run = DpSgdRun(dp())
    result = train_local(
        SPEC, module_to_weights(build_model(SPEC)), data,
        TrainConfig(local_epochs=10, learning_rate=0.1, batch_size=1, seed=0), prepare=run.prepare,
    )
    assert run.parameters().steps == 40
    assert np.isfinite(result.train_loss) and all(np.isfinite(w).all() for w in result.weights.values())


def test_parameters_before_training_are_an_error():
    with pytest.raises(RuntimeError, match="not taken a step"):
        DpSgdRun(dp()).parameters()
