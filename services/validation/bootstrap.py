"""Composition root of the validation service: quality gates, plus the alert stream processor over the
event topics (one consumer, one transaction per batch for both)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic_settings import SettingsConfigDict

from fedstream.messaging.consumer import Handler
from fedstream.service import ServiceDefinition, Timer, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.blobs import open_blob_store
from services.validation.adapters import PostgresValidationStore
from services.validation.handlers import ValidationHandlers
from services.validation.health import AlertPolicy
from services.validation.monitor import HealthMonitor
from services.validation.senders import SenderCheck
from schemas.base import Event
from schemas.topics import VALIDATION


class ValidationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_VALIDATION_", extra="ignore")
    deadline_check_interval_s: float = 0.2
    alerts: bool = True  # the alert stream processor (off: validation only judges candidates)
    # Alert rules (services/validation/health.py documents each).
    alert_window_s: float = 300.0
    alert_security_burst: int = 3
    alert_error_rate: float = 0.5
    alert_error_min_updates: int = 4
    alert_failure_streak: int = 3
    alert_slow_convergence_rounds: int = 3
    alert_saturation_latency_s: float = 30.0
    liveness_check_interval_s: float = 1.0
    # Signed participant messages (heartbeats, evaluation reports): accepted clock skew either way, as ingestion's.
    message_freshness_s: float = 300.0
    nonce_prune_interval_s: float = 60.0
    partition_check_interval_s: float = 3600.0

    def policy(self) -> AlertPolicy:
        return AlertPolicy(
            window_s=self.alert_window_s, security_burst=self.alert_security_burst, error_rate=self.alert_error_rate,
            error_min_updates=self.alert_error_min_updates, failure_streak=self.alert_failure_streak,
            slow_convergence_rounds=self.alert_slow_convergence_rounds,
            saturation_latency_s=self.alert_saturation_latency_s,
        )


def merge(*tables: Mapping[type[Event], Handler]) -> dict[type[Event], Handler]:
    """One handler per event type: where several components handle a type, each runs, in order, in the same
    transaction."""
    by_type: dict[type[Event], list[Handler]] = {}
    for table in tables:
        for event_type, handler in table.items():
            by_type.setdefault(event_type, []).append(handler)
    return {t: hs[0] if len(hs) == 1 else _chain(hs) for t, hs in by_type.items()}


def _chain(handlers: list[Handler]) -> Handler:
    async def run_all(event, tx) -> None:  # noqa: ANN001
        for handler in handlers:
            await handler(event, tx)

    return run_all


async def create_metric_partitions(transactions) -> None:  # noqa: ANN001 - a Transactions[...]
    """Timer: month partitions of the time series ahead of time (a no-op on TimescaleDB hypertables)."""
    async with transactions.begin() as tx:
        await tx.repo.create_partitions()


def handler_table(senders: SenderCheck, *tables: Mapping[type[Event], Handler]) -> dict[type[Event], Handler]:
    """Every component's handlers and the key projection, merged, behind the sender check: a heartbeat or
    evaluation report reaches the handlers only once its signature, key, freshness and nonce check out."""
    return senders.guard(merge(*tables, senders.table()))


def definition(settings: ValidationSettings) -> ServiceDefinition:
    endpoints = settings.resolved()
    if not settings.alerts:
        senders = SenderCheck(freshness_s=settings.message_freshness_s)
        handlers = ValidationHandlers(open_blob_store(endpoints.blob_store_url))
        return ServiceDefinition(VALIDATION, handler_table(senders, handlers.table()), PostgresValidationStore,
                                 (Timer(settings.deadline_check_interval_s, handlers.decide_overdue),
                                  Timer(settings.nonce_prune_interval_s, senders.forget_old_nonces)),
                                 prefetch=senders.prefetch)
    monitor = HealthMonitor(settings.policy())
    senders = SenderCheck(freshness_s=settings.message_freshness_s, on_refused=monitor.on_refused)
    handlers = ValidationHandlers(open_blob_store(endpoints.blob_store_url), on_verdict=monitor.on_verdict)
    return ServiceDefinition(
        name=VALIDATION,
        handlers=handler_table(senders, handlers.table(), monitor.table()),
        repo_factory=PostgresValidationStore,
        timers=(
            Timer(settings.deadline_check_interval_s, handlers.decide_overdue),
            Timer(settings.liveness_check_interval_s, monitor.expire_participants),
            Timer(settings.nonce_prune_interval_s, senders.forget_old_nonces),
            Timer(settings.partition_check_interval_s, create_metric_partitions),
        ),
        prefetch=senders.prefetch,  # a batch's signed messages are verified together
    )


def main() -> None:
    settings = ValidationSettings.load()
    serve(definition(settings), settings.resolved())
