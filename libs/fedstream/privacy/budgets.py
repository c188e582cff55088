"""Privacy budgets by data sensitivity (adaptive ε, seed §2.1).

The seed fixes ε = 0.5 for patient-level data and ε = 1.0 for aggregate statistics, at a stated δ.
A federation spec may ask for less ε than its sensitivity allows, never more: a looser budget than
the data's class is a DPO decision, made by changing the sensitivity class, not a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.federation import DataSensitivity, PrivacySpec


@dataclass(frozen=True)
class Budget:
    epsilon: float
    delta: float


SEED_BUDGETS: dict[DataSensitivity, Budget] = {
    DataSensitivity.PATIENT_LEVEL: Budget(epsilon=0.5, delta=1e-5),
    DataSensitivity.AGGREGATE: Budget(epsilon=1.0, delta=1e-5),
}
# What an update is held to when its federation's spec has not reached the accountant yet: the
# strictest class, so a budget is never overspent for want of information.
STRICTEST: Budget = min(SEED_BUDGETS.values(), key=lambda b: (b.epsilon, b.delta))


def budget_for(privacy: PrivacySpec) -> Budget:
    """The spec's (ε, δ), capped by its sensitivity class's ceiling."""
    ceiling = SEED_BUDGETS[privacy.data_sensitivity]
    epsilon = ceiling.epsilon if privacy.epsilon is None else min(privacy.epsilon, ceiling.epsilon)
    return Budget(epsilon=epsilon, delta=min(privacy.delta, ceiling.delta))
