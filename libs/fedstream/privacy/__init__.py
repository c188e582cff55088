"""Differential-privacy maths, as pure functions: accounting, noise planning, DP-SGD, central DP-FedAvg.

- ``mechanism``: the one mechanism we account for (the Poisson-subsampled Gaussian, composed).
- ``accountant``: ε from mechanism parameters with two independent libraries (Opacus RDP, Google PLD).
- ``planning``: the noise multiplier that keeps a planned training run within a target (ε, δ).
- ``budgets``: the privacy budget a federation's data sensitivity allows (seed §2.1).
- ``central``: DP-FedAvg at the aggregator (clip each update, Gaussian noise on the sum).
- ``adaptive_clipping``: the quantile-tracking clipping norm of Andrew et al. 2021.
- ``dp_sgd``: participant-side DP-SGD with Opacus, plugged into ``train_local(prepare=...)``.

Randomness is always passed in, so the maths stay testable and deterministic under a seed.
"""
