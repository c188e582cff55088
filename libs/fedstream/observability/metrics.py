"""Metrics: OpenTelemetry instruments exported on a Prometheus endpoint, named by Prometheus conventions
(``fedstream_events_consumed_total``, ``fedstream_round_duration_seconds``…; infra/prometheus/alerts.yml
is written against these names).

Instruments are created from the global (proxy) meter at import: they record nothing until
``setup_metrics`` installs a provider, so libraries and tests need no setup.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import metrics

from fedstream.observability.settings import ObservabilitySettings
from schemas import events as ev
from schemas.alerts import AlertRaised
from schemas.base import Event

_meter = metrics.get_meter("fedstream")

events_consumed = _meter.create_counter("fedstream.events.consumed", description="Events handled, by service, topic and type")
events_failed = _meter.create_counter("fedstream.events.failed", description="Records dead-lettered, by service and reason")
events_emitted = _meter.create_counter("fedstream.events.emitted", description="Events committed to the outbox, by type")
batch_duration = _meter.create_histogram("fedstream.batch.duration", unit="s", description="Time to handle one batch")
updates_accepted = _meter.create_counter("fedstream.updates.accepted", description="Updates admitted")
updates_rejected = _meter.create_counter("fedstream.updates.rejected", description="Updates rejected, by reason")
rounds = _meter.create_counter("fedstream.rounds", description="Rounds finished, by outcome (released|rejected|failed)")
round_duration = _meter.create_histogram("fedstream.round.duration", unit="s", description="Round opened → model released")
round_metric = _meter.create_gauge("fedstream.round.metric", description="Latest released model's federated metrics")
privacy_epsilon = _meter.create_gauge("fedstream.privacy.epsilon", description="Cumulative ε per participant")
budget_exhausted = _meter.create_counter("fedstream.privacy.budget_exhausted", description="Updates refused for budget")
messages_refused = _meter.create_counter(
    "fedstream.messages.refused",
    description="Participant messages (heartbeats, evaluation reports) refused by signature checks, by service, type and reason",
)
live_participants = _meter.create_gauge("fedstream.live_participants", description="Participants with a live heartbeat")
expected_participants = _meter.create_gauge("fedstream.expected_participants", description="Participants enrolled")
alerts_raised = _meter.create_counter(
    "fedstream.alerts.raised", description="Alerts raised by validation's stream processor, by severity, kind and federation"
)


def setup_metrics(service: str, settings: ObservabilitySettings) -> None:
    """Serve this process's metrics (and process CPU/memory) on ``settings.metrics_port``."""
    if not settings.metrics_port:
        return
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import start_http_server

    reader = PrometheusMetricReader()
    provider = MeterProvider(resource=Resource.create({"service.name": f"fedstream-{service}"}), metric_readers=[reader])
    metrics.set_meter_provider(provider)
    start_http_server(settings.metrics_port, addr=settings.metrics_host)


def observe_committed(service: str, emitted: Iterable[Event]) -> None:
    """Domain metrics follow from what a service committed to emit."""
    for event in emitted:
        events_emitted.add(1, {"service": service, "type": event.TYPE})
        match event:
            case ev.UpdateAccepted():
                updates_accepted.add(1)
            case ev.UpdateRejected():
                updates_rejected.add(1, {"reason": event.reason.value})
            case ev.ModelReleased():
                rounds.add(1, {"outcome": "released"})
                for name in ("auc", "accuracy", "loss"):
                    value = getattr(event.metrics, name)
                    if value is not None:
                        round_metric.set(value, {"federation": event.federation_id, "metric": name})
            case ev.ModelRejected():
                rounds.add(1, {"outcome": "rejected"})
            case ev.RoundFailed():
                rounds.add(1, {"outcome": "failed"})
            case ev.PrivacyCharged() if event.epsilon is not None:
                privacy_epsilon.set(event.epsilon, {"federation": event.federation_id, "participant": event.participant_id})
            case ev.BudgetExhausted():
                budget_exhausted.add(1, {"reason": event.reason.value})
            case AlertRaised():
                alerts_raised.add(1, {"severity": event.severity.value, "kind": event.kind.value,
                                      "federation": event.federation_id})
