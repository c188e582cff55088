"""Cross-service message models: the contract between fedstream's services and participants."""

from schemas.base import BlobRef, Event, ParamSpec
from schemas.events import *  # noqa: F403 - the public event vocabulary
from schemas.federation import FederationSpec, ModelSpec
from schemas.registry import EVENT_TYPES, UnknownEventType, event_class
from schemas.topics import ALL_TOPICS, Topic, topic_for

__all__ = ["BlobRef", "Event", "ParamSpec", "FederationSpec", "ModelSpec", "EVENT_TYPES", "UnknownEventType",
           "event_class", "ALL_TOPICS", "Topic", "topic_for"]
