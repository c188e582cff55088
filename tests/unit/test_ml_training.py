"""Local training and holdout evaluation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from fedstream.ml.data import LocalDataset, breast_cancer_sites, synthetic_cohort_sites
from fedstream.ml.models import ModelSpec, initial_weights
from fedstream.ml.training import TrainConfig, evaluate, limit_torch_threads, train_local

MLP = ModelSpec(architecture="mlp", input_dim=20, hidden=(16,))
LOGISTIC = ModelSpec(architecture="logistic", input_dim=30)
CONFIG = TrainConfig(local_epochs=1, learning_rate=0.2, batch_size=32, seed=11)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    # On a loaded machine, torch's default of one thread per core spins against other processes and
    # makes each small training run ~10x slower; one thread is what simulated participants use too.
    previous = limit_torch_threads(1)
    yield
    limit_torch_threads(previous)


@pytest.fixture(scope="module")
def hospital() -> LocalDataset:
    return synthetic_cohort_sites(n_sites=2, patients_per_site=2000, seed=0)[1]


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[name], b[name]) for name in a)


# --- training ----------------------------------------------------------------------------------------


def test_one_epoch_lowers_the_holdout_loss(hospital: LocalDataset) -> None:
    start = initial_weights(MLP)
    trained = train_local(MLP, start, hospital, CONFIG)
    assert evaluate(MLP, trained.weights, hospital).loss < evaluate(MLP, start, hospital).loss - 0.05


def test_one_epoch_of_logistic_regression_learns_breast_cancer() -> None:
    site = breast_cancer_sites(n_sites=3, seed=0)[0]
    start = initial_weights(LOGISTIC)
    trained = train_local(LOGISTIC, start, site, TrainConfig(local_epochs=1, learning_rate=0.1, seed=0))
    before, after = evaluate(LOGISTIC, start, site), evaluate(LOGISTIC, trained.weights, site)
    assert after.loss < before.loss and after.accuracy > 0.85


def test_training_is_deterministic_for_a_seed_and_varies_with_it(hospital: LocalDataset) -> None:
    start = initial_weights(MLP)
    first = train_local(MLP, start, hospital, CONFIG)
    torch.manual_seed(12345)  # the global RNG must play no part
    again = train_local(MLP, start, hospital, CONFIG)
    other = train_local(MLP, start, hospital, CONFIG.model_copy(update={"seed": 12}))
    assert _same(first.weights, again.weights) and first.train_loss == again.train_loss
    assert not _same(first.weights, other.weights)


def test_training_reports_examples_and_loss_and_leaves_its_inputs_alone(hospital: LocalDataset) -> None:
    start = initial_weights(MLP)
    snapshot = {name: value.copy() for name, value in start.items()}
    rng_state = torch.get_rng_state()
    result = train_local(MLP, start, hospital, CONFIG)
    assert result.num_examples == hospital.num_train == 1500
    assert 0.0 < result.train_loss < 1.0
    assert _same(start, snapshot)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert all(value.dtype == np.float32 for value in result.weights.values())


def test_more_local_epochs_fit_the_train_split_better(hospital: LocalDataset) -> None:
    start = initial_weights(MLP)
    one = train_local(MLP, start, hospital, CONFIG)
    three = train_local(MLP, start, hospital, CONFIG.model_copy(update={"local_epochs": 3}))
    assert three.train_loss < one.train_loss


def test_prepare_hook_receives_the_training_parts_and_its_replacements_are_used(
    hospital: LocalDataset,
) -> None:
    start = initial_weights(MLP)
    seen: dict[str, object] = {}

    def frozen_optimizer(module, optimizer, loader):  # the shape of Opacus's make_private
        seen["bias"] = module.state_dict()["0.bias"].clone()
        seen["batch_size"] = loader.batch_size
        return module, torch.optim.SGD(module.parameters(), lr=0.0), loader

    result = train_local(MLP, start, hospital, CONFIG, prepare=frozen_optimizer)
    np.testing.assert_array_equal(seen["bias"].numpy(), start["0.bias"])
    assert seen["batch_size"] == 32
    assert _same(result.weights, start)  # the hook's zero-lr optimizer did the stepping


@pytest.mark.parametrize(
    "fields",
    [
        {"local_epochs": 0, "learning_rate": 0.1, "seed": 0},
        {"local_epochs": 1, "learning_rate": 0.0, "seed": 0},
        {"local_epochs": 1, "learning_rate": 0.1, "batch_size": 0, "seed": 0},
        {"local_epochs": 1, "learning_rate": 0.1},
        {"local_epochs": 1, "learning_rate": float("inf"), "seed": 0},
    ],
)
def test_train_config_rejects_invalid_values(fields: dict) -> None:
    with pytest.raises(ValidationError):
        TrainConfig.model_validate(fields)


# --- evaluation ---------------------------------------------------------------------------------------


def _numpy_logits(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    hidden = np.maximum(x @ weights["0.weight"].T + weights["0.bias"], 0.0)
    return (hidden @ weights["2.weight"].T + weights["2.bias"])[:, 0]


def _rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    # Probability that a random positive outscores a random negative (ties count half).
    positives, negatives = scores[labels == 1], scores[labels == 0]
    wins = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return (wins + 0.5 * ties) / (len(positives) * len(negatives))


@pytest.mark.parametrize("epochs", [0, 5], ids=["initial", "trained"])
def test_evaluate_matches_an_independent_numpy_computation(hospital: LocalDataset, epochs: int) -> None:
    weights = initial_weights(MLP)
    if epochs:
        config = CONFIG.model_copy(update={"local_epochs": epochs})
        weights = train_local(MLP, weights, hospital, config).weights
    result = evaluate(MLP, weights, hospital)
    logits = _numpy_logits(weights, hospital.x_holdout.astype(np.float64))
    labels = hospital.y_holdout
    assert 0 < (logits > 0).sum() < len(logits)  # both predictions occur, so accuracy can be wrong
    # BCE with logits, in the stable form log(1 + e^z) - y z.
    loss = np.mean(np.logaddexp(0.0, logits) - labels * logits)
    assert result.num_examples == 500
    assert result.accuracy == pytest.approx(np.mean((logits > 0) == (labels == 1)))
    assert result.loss == pytest.approx(loss, rel=1e-5)
    assert result.auc == pytest.approx(_rank_auc(labels, logits), abs=1e-6)


def test_evaluate_falls_back_to_accuracy_on_a_single_class_holdout(hospital: LocalDataset) -> None:
    negatives = hospital.y_holdout == 0
    x_holdout, y_holdout = hospital.x_holdout[negatives], hospital.y_holdout[negatives]
    one_class = LocalDataset(hospital.x_train, hospital.y_train, x_holdout, y_holdout, site=0, name="t")
    result = evaluate(MLP, initial_weights(MLP), one_class)
    assert result.auc is None
    assert result.num_examples == int(negatives.sum())
    assert 0.0 <= result.accuracy <= 1.0 and np.isfinite(result.loss)


def test_limit_torch_threads_sets_and_returns_the_previous_count() -> None:
    previous = limit_torch_threads(2)
    try:
        assert torch.get_num_threads() == 2
    finally:
        assert limit_torch_threads(previous) == 2
    assert torch.get_num_threads() == previous
    with pytest.raises(ValueError):
        limit_torch_threads(0)
