"""DP-FedAvg at the aggregator and adaptive clipping: pure numpy, RNG passed in."""

from __future__ import annotations

import numpy as np
import pytest

from fedstream.privacy.adaptive_clipping import QuantileClipping, next_clip_norm, update_noise_multiplier
from fedstream.privacy.central import SystemNoise, clip, dp_fedavg, global_norm, noisy_sum

BASE = {"w": np.zeros((4, 5), np.float32), "b": np.zeros(5, np.float32)}


def update(scale: float, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: (rng.standard_normal(v.shape) * scale).astype(np.float32) for k, v in BASE.items()}


def test_clipping_bounds_the_norm_over_all_tensors_and_never_scales_up():
    big, small = update(10.0, 1), update(0.01, 2)
    clipped, norm = clip(big, 1.0)
    assert norm > 1.0 and global_norm(clipped) == pytest.approx(1.0, rel=1e-9)
    unclipped, _ = clip(small, 1.0)
    assert all(np.allclose(unclipped[k], small[k]) for k in small)


def test_dp_fedavg_without_noise_is_the_mean_of_the_clipped_deltas():
    updates = [update(10.0, 1), update(0.01, 2)]
    new, stats = dp_fedavg(BASE, updates, clip_norm=1.0, noise_multiplier=0.0, rng=np.random.default_rng(0))
    expected = {k: (clip(updates[0], 1.0)[0][k] + updates[1][k]) / 2 for k in BASE}
    assert all(np.allclose(new[k], expected[k], atol=1e-6) for k in BASE)
    assert stats.fraction_clipped == 0.5 and stats.noise_stddev == 0.0
    assert new["w"].dtype == np.float32


def test_the_noise_on_the_sum_has_variance_sigma_s_squared():
    # 200k coordinates: the sample variance's relative standard error is sqrt(2/n) ≈ 0.003, so a 2 %
    # tolerance is ~6 standard errors; seeded, so it is decided once, not per run.
    sigma, s = 1.3, 0.7
    clipped = [{"w": np.zeros(200_000)}]
    noise = noisy_sum(clipped, sigma * s, np.random.default_rng(12345))["w"]
    assert abs(noise.mean()) < 5 * sigma * s / np.sqrt(noise.size)
    assert noise.var() == pytest.approx((sigma * s) ** 2, rel=0.02)


def test_dp_fedavg_noise_on_the_mean_is_sigma_s_over_n():
    n, sigma, s = 5, 2.0, 0.5
    zero = {"w": np.zeros(100_000, np.float64)}
    new, stats = dp_fedavg(zero, [zero] * n, clip_norm=s, noise_multiplier=sigma, rng=np.random.default_rng(7))
    assert stats.noise_stddev == sigma * s
    assert new["w"].std() == pytest.approx(sigma * s / n, rel=0.02)


def test_system_noise_draws_standard_normals_from_the_os():
    # Not seedable by design; 100k draws: tolerances are > 10 standard errors, so this cannot flake.
    x = SystemNoise().normal(0.0, 1.0, (100_000,))
    assert np.isfinite(x).all() and abs(x.mean()) < 0.05 and x.var() == pytest.approx(1.0, rel=0.05)
    assert abs(np.mean(x < 0) - 0.5) < 0.02


def test_adaptive_clipping_moves_toward_the_target_quantile():
    norms = list(np.linspace(0.1, 10.0, 100))  # median ≈ 5
    state = QuantileClipping(clip_norm=0.5, target_quantile=0.5, learning_rate=0.5)
    rng = np.random.default_rng(0)
    for _ in range(60):
        state = next_clip_norm(state, norms, rng)
    assert 4.0 < state.clip_norm < 6.0
    high = QuantileClipping(clip_norm=50.0)
    assert next_clip_norm(high, norms, rng).clip_norm < 50.0  # all unclipped: shrink


def test_count_noise_takes_its_share_of_the_noise_budget():
    assert update_noise_multiplier(1.0, 0.0) == 1.0
    z = update_noise_multiplier(1.0, 5.0)
    assert z > 1.0 and z ** -2 + (2 * 5.0) ** -2 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="σ_b"):
        update_noise_multiplier(1.0, 0.4)
