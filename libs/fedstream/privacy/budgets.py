"""Privacy budgets by data sensitivity (adaptive ε, seed §2.1).

The seed fixes ε = 0.5 for patient-level data and ε = 1.0 for aggregate statistics, at a stated δ
(``schemas.federation.EPSILON_CEILING``). A federation spec may ask for less ε than its sensitivity
class allows, never more (the spec refuses it): a looser budget is a DPO decision, made by changing
the class, not a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.federation import EPSILON_CEILING, DataSensitivity, PrivacySpec

SEED_DELTA = 1e-5


@dataclass(frozen=True)
class Budget:
    epsilon: float
    delta: float


SEED_BUDGETS: dict[DataSensitivity, Budget] = {s: Budget(e, SEED_DELTA) for s, e in EPSILON_CEILING.items()}
# What an update is held to when its federation's spec has not reached the accountant yet: the
# strictest class, so a budget is never overspent for want of information.
STRICTEST: Budget = min(SEED_BUDGETS.values(), key=lambda b: (b.epsilon, b.delta))


def budget_for(privacy: PrivacySpec) -> Budget:
    """A federation's (ε, δ): the spec's ε, or its sensitivity class's ceiling when it names none."""
    return Budget(epsilon=privacy.budget_epsilon, delta=privacy.delta)
