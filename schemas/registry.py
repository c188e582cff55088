"""Type name → event class, for decoding. Built from the topic table so nothing is listed twice."""

from __future__ import annotations

from schemas.base import Event
from schemas.topics import ALL_TOPICS

EVENT_TYPES: dict[str, type[Event]] = {m.TYPE: m for t in ALL_TOPICS for m in t.messages}


class UnknownEventType(LookupError):
    """A message names a type no schema describes."""


def event_class(type_name: str) -> type[Event]:
    try:
        return EVENT_TYPES[type_name]
    except KeyError:
        raise UnknownEventType(f"unknown event type {type_name!r}") from None
