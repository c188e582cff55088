"""Topic names, defined once. Each topic lists its messages, producers and consumers; the AsyncAPI
document is generated from this table, and services subscribe by naming these constants.

Every message is keyed by federation id, so one federation's (and therefore one round's) events stay
in order within a partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import events as ev
from schemas.base import Event

REGISTRY, INGESTION, PRIVACY, AGGREGATION, VALIDATION, COMPLIANCE = (
    "registry",
    "ingestion",
    "privacy-accounting",
    "aggregation",
    "validation",
    "compliance",
)
PARTICIPANT, OPERATOR = "participant", "operator"
SERVICES = (INGESTION, PRIVACY, AGGREGATION, VALIDATION, REGISTRY, COMPLIANCE)


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    messages: tuple[type[Event], ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    partitions: int = 3

    def carries(self, event_type: type[Event]) -> bool:
        return event_type in self.messages


COMMANDS = Topic(
    "fedstream.commands",
    "Operator commands to the registry.",
    (ev.CreateFederation,),
    (OPERATOR,),
    (REGISTRY, COMPLIANCE),
)
ROUNDS = Topic(
    "fedstream.rounds",
    "Federation lifecycle: created, round opened, model released, completed.",
    (ev.FederationCreated, ev.RoundOpened, ev.ModelReleased, ev.FederationCompleted),
    (REGISTRY,),
    (INGESTION, PRIVACY, AGGREGATION, VALIDATION, REGISTRY, COMPLIANCE, PARTICIPANT),
)
SUBMISSIONS = Topic(
    "fedstream.submissions",
    "Model updates submitted by participants (tensors by claim check).",
    (ev.UpdateSubmitted,),
    (PARTICIPANT,),
    (INGESTION, COMPLIANCE),
    partitions=6,
)
HEARTBEATS = Topic(
    "fedstream.heartbeats",
    "Participant liveness; kept in Redis with a TTL.",
    (ev.ParticipantHeartbeat,),
    (PARTICIPANT,),
    (INGESTION, COMPLIANCE),
)
ADMISSIONS = Topic(
    "fedstream.admissions",
    "Admission decisions: accepted, or rejected with a machine-readable reason.",
    (ev.UpdateAccepted, ev.UpdateRejected),
    (INGESTION, AGGREGATION),
    (PRIVACY, REGISTRY, COMPLIANCE, PARTICIPANT),
    partitions=6,
)
PRIVACY_LEDGER = Topic(
    "fedstream.privacy",
    "Privacy charges (only charged updates are aggregated) and refusals of updates that would overspend a budget.",
    (ev.PrivacyCharged, ev.BudgetExhausted),
    (PRIVACY,),
    (AGGREGATION, REGISTRY, COMPLIANCE, PARTICIPANT),
    partitions=6,
)
AGGREGATES = Topic(
    "fedstream.aggregates",
    "Round outcomes from the aggregator: a candidate model, or a failed round.",
    (ev.RoundAggregated, ev.RoundFailed),
    (AGGREGATION,),
    (INGESTION, PRIVACY, VALIDATION, REGISTRY, COMPLIANCE, PARTICIPANT),
)
EVALUATIONS = Topic(
    "fedstream.evaluations",
    "Participants' federated evaluation of candidate models on their holdouts.",
    (ev.EvaluationReported,),
    (PARTICIPANT,),
    (VALIDATION, COMPLIANCE),
)
VALIDATIONS = Topic(
    "fedstream.validations",
    "Validation verdicts on candidate models.",
    (ev.ModelValidated, ev.ModelRejected),
    (VALIDATION,),
    (REGISTRY, COMPLIANCE),
)
DEAD_LETTER = Topic(
    "fedstream.deadletter",
    "Messages no consumer could process, byte for byte, with the error in headers.",
    (),
    SERVICES,
    (OPERATOR,),
)

ALL_TOPICS: tuple[Topic, ...] = (
    COMMANDS,
    ROUNDS,
    SUBMISSIONS,
    HEARTBEATS,
    ADMISSIONS,
    PRIVACY_LEDGER,
    AGGREGATES,
    EVALUATIONS,
    VALIDATIONS,
    DEAD_LETTER,
)


def topic_for(event_type: type[Event]) -> Topic:
    """The one topic an event type travels on."""
    for topic in ALL_TOPICS:
        if topic.carries(event_type):
            return topic
    raise LookupError(f"{event_type.__name__} is on no topic")


def topics_consumed_by(service: str) -> tuple[Topic, ...]:
    return tuple(t for t in ALL_TOPICS if service in t.consumers)
