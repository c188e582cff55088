"""Tracing: one trace follows an update from the participant's publish to the model's release.

The W3C ``traceparent`` rides in each record's headers (CloudEvents binary mode). Consumers continue
the producer's trace; each emitted event carries the handling span's context. Span attributes name
federations, rounds and participants by their opaque ids only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from fedstream.observability.settings import ObservabilitySettings
from schemas.base import Event

_PROPAGATOR = TraceContextTextMapPropagator()
tracer = trace.get_tracer("fedstream")
# Whether this process records spans. Off, a consumer span would be a no-op that still costs a context
# extraction and a span object per message (a sixth of compliance's CPU under load): it is skipped, and
# events emitted while handling carry a child of the consumed traceparent instead (Transaction.emit).
_recording = False


def setup_tracing(service: str, settings: ObservabilitySettings) -> TracerProvider | None:
    """Install the process's tracer provider; None when tracing is off."""
    if settings.traces == "off":
        return None
    global _recording
    provider = TracerProvider(resource=Resource.create({"service.name": f"fedstream-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(service, settings), schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    _recording = True
    if settings.traces != "console":
        _instrument_clients()
    return provider


def _exporter(service: str, settings: ObservabilitySettings) -> SpanExporter:
    if settings.traces == "console":
        return ConsoleSpanExporter()
    if settings.traces == "file":
        return JsonLinesSpanExporter(settings.traces_dir / f"{service}-{os.getpid()}.jsonl")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint.rstrip('/')}/v1/traces")


def _instrument_clients() -> None:
    """Database and Redis calls become child spans of the handler that made them."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument()
    RedisInstrumentor().instrument()


def attributes(event: Event, topic: str) -> dict[str, str | int]:
    attrs: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.message.id": str(event.event_id),
        "cloudevents.event_type": event.TYPE,
        "fedstream.federation_id": event.federation_id,
    }
    if event.round_number is not None:
        attrs["fedstream.round"] = event.round_number
    participant = getattr(event, "participant_id", None)
    if participant:
        attrs["fedstream.participant_id"] = participant
    return attrs


@contextmanager
def consuming(event: Event, topic: str, traceparent: str | None) -> Iterator[trace.Span]:
    """A CONSUMER span continuing the producer's trace (nothing when this process records no spans)."""
    if not _recording:
        yield trace.INVALID_SPAN
        return
    context = _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})
    with tracer.start_as_current_span(
        f"{topic} process {event.TYPE}", context=context, kind=SpanKind.CONSUMER, attributes=attributes(event, topic)
    ) as span:
        yield span


def current_traceparent() -> str | None:
    """The active span's context as a ``traceparent`` header value, if there is one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans as JSON lines: lets tests and offline tools read traces of many processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.path.open("a") as out:
            for span in spans:
                out.write(json.dumps(_as_dict(span)) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _as_dict(span: ReadableSpan) -> dict[str, object]:
    ctx = span.get_span_context()
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "name": span.name,
        "service": span.resource.attributes.get("service.name"),
        "kind": span.kind.name,
        "attributes": dict(span.attributes or {}),
        "links": [f"{link.context.trace_id:032x}" for link in span.links],
        "start": span.start_time,
        "end": span.end_time,
    }
