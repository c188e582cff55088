"""The privacy package's named errors."""

from __future__ import annotations


class PrivacyError(ValueError):
    """Base of every error this package raises."""


class InvalidMechanism(PrivacyError):
    """Mechanism parameters that no accountant can bound (e.g. a sample rate outside (0, 1])."""


class UnreachableBudget(PrivacyError):
    """No noise multiplier within the search range keeps the planned training within the target ε."""
