"""Events ↔ Kafka records: CloudEvents 1.0 in binary mode (attributes as headers, JSON data).

Decoding is the trust edge: anything that is not exactly one of our schemas raises
``MalformedMessage`` with a reason, and the consumer dead-letters it byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from fedstream.messaging.tracing import new_traceparent
from schemas.base import Event
from schemas.registry import UnknownEventType, event_class

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
Headers = list[tuple[str, bytes]]


class MalformedMessage(ValueError):
    """A record that cannot be decoded into a known event; never retried."""


@dataclass(frozen=True)
class Record:
    """What goes onto (or came off) a topic."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode("utf-8", errors="replace")
        return None


def encode(event: Event, topic: str, traceparent: str | None = None) -> Record:
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", str(event.event_id).encode()),
        ("ce_type", event.TYPE.encode()),
        ("ce_source", f"/fedstream/{event.source}".encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("ce_subject", _subject(event).encode()),
        ("ce_dataschema", f"urn:fedstream:schema:{event.TYPE}".encode()),
        ("content-type", CONTENT_TYPE.encode()),
        ("traceparent", (traceparent or new_traceparent()).encode()),
    ]
    return Record(topic, event.federation_id.encode(), event.model_dump_json().encode(), headers)


def decode(record: Record) -> Event:
    type_name = record.header("ce_type")
    if record.header("ce_specversion") != SPEC_VERSION or not type_name:
        raise MalformedMessage("missing CloudEvents headers (ce_specversion 1.0, ce_type)")
    try:
        event = event_class(type_name).model_validate_json(record.value)
    except UnknownEventType as exc:
        raise MalformedMessage(str(exc)) from None
    except ValidationError as exc:
        raise MalformedMessage(f"{type_name} does not match its schema: {_short(exc)}") from None
    if record.header("ce_id") != str(event.event_id):
        raise MalformedMessage("ce_id header disagrees with the payload's event_id")
    if record.key != event.federation_id.encode():
        raise MalformedMessage("record key is not the event's federation id")
    return event


def _subject(event: Event) -> str:
    round_number = event.round_number
    return event.federation_id if round_number is None else f"{event.federation_id}/round/{round_number}"


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5]]
    return "; ".join(parts)
