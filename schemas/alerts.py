"""Alerts raised by validation's stream processor over the event topics (seed §6.2's three levels).

An alert is a fact about a window: "participant p had 4 hash-mismatch rejections in the 5-minute window
starting 10:05". Its ``dedup_key`` names that fact, and its event id is derived from the key, so a
condition that keeps holding for the rest of the window — or a redelivered event — raises it once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from schemas.base import Event

AlertText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class AlertSeverity(StrEnum):
    CRITICAL = "critical"  # page someone now
    WARNING = "warning"  # look today
    INFO = "info"  # the federation's logbook


class AlertKind(StrEnum):
    CONVERGENCE_FAILURE = "convergence_failure"
    PRIVACY_VIOLATION = "privacy_violation"
    SECURITY_BREACH = "security_breach"
    HIGH_ERROR_RATE = "high_error_rate"
    SLOW_CONVERGENCE = "slow_convergence"
    RESOURCE_SATURATION = "resource_saturation"
    ROUND_COMPLETED = "round_completed"
    PARTICIPANT_JOINED = "participant_joined"
    PARTICIPANT_LEFT = "participant_left"
    CONFIGURATION_CHANGE = "configuration_change"


# Seed §6.2: each kind has one level; routing (paging vs logbook) keys on it, so it is not a free choice.
SEVERITY: dict[AlertKind, AlertSeverity] = {
    AlertKind.CONVERGENCE_FAILURE: AlertSeverity.CRITICAL,
    AlertKind.PRIVACY_VIOLATION: AlertSeverity.CRITICAL,
    AlertKind.SECURITY_BREACH: AlertSeverity.CRITICAL,
    AlertKind.HIGH_ERROR_RATE: AlertSeverity.WARNING,
    AlertKind.SLOW_CONVERGENCE: AlertSeverity.WARNING,
    AlertKind.RESOURCE_SATURATION: AlertSeverity.WARNING,
    AlertKind.ROUND_COMPLETED: AlertSeverity.INFO,
    AlertKind.PARTICIPANT_JOINED: AlertSeverity.INFO,
    AlertKind.PARTICIPANT_LEFT: AlertSeverity.INFO,
    AlertKind.CONFIGURATION_CHANGE: AlertSeverity.INFO,
}


class AlertRaised(Event):
    """One alert: what (kind, severity), about whom (subject), over which window, the value that crossed
    the threshold."""

    TYPE: ClassVar[str] = "io.fedstream.alert.raised.v1"
    kind: AlertKind
    severity: AlertSeverity
    # A participant id as claimed (rejections may name unknown ones), a service, or the federation itself.
    subject: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    round: int | None = Field(default=None, ge=1)
    window_start: AwareDatetime
    window_end: AwareDatetime
    value: float
    threshold: float
    dedup_key: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    summary: AlertText

    @model_validator(mode="after")
    def _consistent(self) -> "AlertRaised":
        if self.severity is not SEVERITY[self.kind]:
            raise ValueError(f"{self.kind.value} alerts are {SEVERITY[self.kind].value}, not {self.severity.value}")
        if self.window_end < self.window_start:
            raise ValueError("an alert's window ends before it starts")
        return self
