"""Noise planning from a target ε, and budgets by data sensitivity."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fedstream.privacy.accountant import estimate, rdp_epsilon
from fedstream.privacy.budgets import SEED_BUDGETS, STRICTEST
from fedstream.privacy.dp_sgd import opacus_round_shape, plan_noise
from fedstream.privacy.errors import UnreachableBudget
from fedstream.privacy.mechanism import SampledGaussian
from fedstream.privacy.planning import plan_noise_multiplier
from schemas.federation import DataSensitivity, PrivacySpec

DELTA = 1e-5


def test_the_planned_noise_meets_the_target_and_a_little_less_would_not():
    sigma = plan_noise_multiplier(0.5, DELTA, 0.1, 10, rounds=30)
    assert rdp_epsilon([SampledGaussian(sigma, 0.1, 300)], DELTA) <= 0.5
    assert rdp_epsilon([SampledGaussian(sigma * 0.99, 0.1, 300)], DELTA) > 0.5


def test_the_ledger_never_finds_a_planned_run_over_budget():
    sigma = plan_noise_multiplier(1.0, DELTA, 0.05, 20, rounds=10)
    assert estimate([SampledGaussian(sigma, 0.05, 20)] * 10, DELTA).epsilon <= 1.0


def test_what_was_spent_already_leaves_less_room_so_more_noise():
    fresh = plan_noise_multiplier(0.5, DELTA, 0.1, 10, rounds=10)
    prior = [SampledGaussian(fresh, 0.1, 10)] * 5
    assert plan_noise_multiplier(0.5, DELTA, 0.1, 10, rounds=10, prior=prior) > fresh


def test_a_budget_no_noise_can_meet_is_named():
    prior = [SampledGaussian(0.5, 1.0, 100)]  # already far over ε = 0.5
    with pytest.raises(UnreachableBudget):
        plan_noise_multiplier(0.5, DELTA, 0.1, 10, rounds=10, prior=prior)


def test_round_shape_follows_opacus_poisson_loader():
    assert opacus_round_shape(284, 32, 2) == (1 / 9, 18)
    assert opacus_round_shape(10, 32, 1) == (1.0, 1)
    assert plan_noise(284, 32, 1, 30, 0.5, DELTA) > plan_noise(284, 32, 1, 30, 1.0, DELTA)


def test_budgets_follow_data_sensitivity_and_a_spec_may_only_be_stricter():
    assert SEED_BUDGETS[DataSensitivity.PATIENT_LEVEL].epsilon == 0.5 == STRICTEST.epsilon
    assert PrivacySpec(data_sensitivity=DataSensitivity.AGGREGATE).budget_epsilon == 1.0
    assert PrivacySpec(data_sensitivity=DataSensitivity.PATIENT_LEVEL).budget_epsilon == 0.5
    assert PrivacySpec(data_sensitivity=DataSensitivity.AGGREGATE, epsilon=0.3).budget_epsilon == 0.3
    with pytest.raises(ValidationError, match="ceiling"):
        PrivacySpec(data_sensitivity=DataSensitivity.PATIENT_LEVEL, epsilon=1.0)
