"""ε from mechanism parameters, checked against each library called directly."""

from __future__ import annotations

import dp_accounting
import pytest
from dp_accounting.pld import PLDAccountant
from opacus.accountants import RDPAccountant

from fedstream.privacy.accountant import PLD_DISCRETISATION, RDP_ORDERS, estimate, pld_epsilon, rdp_epsilon
from fedstream.privacy.errors import InvalidMechanism
from fedstream.privacy.mechanism import SampledGaussian, compacted

DELTA = 1e-5
ROUND = SampledGaussian(noise_multiplier=6.0, sample_rate=0.1, steps=10)


def opacus_direct(history: list[tuple[float, float, int]], delta: float) -> float:
    accountant = RDPAccountant()
    accountant.history = list(history)
    return accountant.get_epsilon(delta, alphas=list(RDP_ORDERS))


def pld_direct(sigma: float, q: float, steps: int, delta: float) -> float:
    accountant = PLDAccountant(dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE, value_discretization_interval=PLD_DISCRETISATION)
    accountant.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps))
    return accountant.get_epsilon(delta)


def test_rdp_matches_opacus_accountant_composed_round_by_round():
    rounds = [ROUND] * 12
    expected = opacus_direct([(m.noise_multiplier, m.sample_rate, m.steps) for m in rounds], DELTA)
    assert rdp_epsilon(rounds, DELTA) == pytest.approx(expected, rel=1e-6)


def test_pld_matches_google_accountant():
    assert pld_epsilon([ROUND] * 12, DELTA) == pytest.approx(pld_direct(6.0, 0.1, 120, DELTA), rel=1e-6)


def test_heterogeneous_rounds_compose_and_cost_more_than_either_part():
    noisier = SampledGaussian(12.0, 0.1, 10)
    both = rdp_epsilon([ROUND, noisier], DELTA)
    assert both > max(rdp_epsilon([ROUND], DELTA), rdp_epsilon([noisier], DELTA))
    expected = opacus_direct([(6.0, 0.1, 10), (12.0, 0.1, 10)], DELTA)
    assert both == pytest.approx(expected, rel=1e-6)


def test_epsilon_grows_with_rounds_and_shrinks_with_noise():
    assert rdp_epsilon([ROUND] * 2, DELTA) > rdp_epsilon([ROUND], DELTA)
    assert pld_epsilon([SampledGaussian(12.0, 0.1, 10)], DELTA) < pld_epsilon([ROUND], DELTA)


def test_the_charged_bound_is_the_tighter_of_two_valid_bounds():
    e = estimate([ROUND] * 30, DELTA)
    assert e.epsilon == min(e.rdp, e.pld) and e.accountant in ("rdp", "pld")
    assert e.pld < e.rdp  # PLD is tight for the subsampled Gaussian; RDP's conversion is lossy


def test_compacting_merges_identical_mechanisms_only():
    other = SampledGaussian(3.0, 0.1, 5)
    assert compacted([ROUND, other, ROUND]) == (other, SampledGaussian(6.0, 0.1, 20))
    assert compacted([other, ROUND, ROUND]) == compacted([ROUND, ROUND, other])
    assert estimate([], DELTA).epsilon == 0.0


@pytest.mark.parametrize("sigma,q,steps", [(0.0, 0.1, 1), (1.0, 0.0, 1), (1.0, 1.5, 1), (1.0, 0.1, -1), (float("nan"), 0.1, 1)])
def test_mechanisms_no_accountant_can_bound_are_refused(sigma, q, steps):
    with pytest.raises(InvalidMechanism):
        SampledGaussian(sigma, q, steps)


def test_delta_must_be_a_probability():
    with pytest.raises(InvalidMechanism):
        rdp_epsilon([ROUND], 0.0)
