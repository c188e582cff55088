"""Topic names, defined once. Each topic lists its messages, producers and consumers; the AsyncAPI
document is generated from this table, and services subscribe by naming these constants.

Every message is keyed by federation id, so one federation's (and therefore one round's) events stay
in order within a partition.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import alerts as al
from schemas import compliance as cp
from schemas import custody as he
from schemas import events as ev
from schemas import identity as idn
from schemas import access as acc
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
# Holds HE secret keys and decrypts only quorum aggregates; separate from aggregation, so not in SERVICES
# (which the compose file mirrors): the supervisor adds it.
KEY_CUSTODY = "key-custody"
ADMIN_API = "admin-api"
SERVICES = (INGESTION, PRIVACY, AGGREGATION, VALIDATION, REGISTRY, COMPLIANCE)


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    messages: tuple[type[Event], ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    partitions: int = 3
    # Broker-side topic settings, e.g. retention; applied when the topic is created.
    config: tuple[tuple[str, str], ...] = ()

    def carries(self, event_type: type[Event]) -> bool:
        return event_type in self.messages


COMMANDS = Topic(
    "fedstream.commands",
    "Operator commands to the registry.",
    (ev.CreateFederation, *idn.COMMANDS, *cp.COMMANDS),
    (OPERATOR,),
    (REGISTRY, COMPLIANCE),
    # Carries participant ids: its copies are gone by the erasure deadline (schemas/compliance.py).
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
ROUNDS = Topic(
    "fedstream.rounds",
    "Federation lifecycle: created, round opened, model released, completed.",
    (ev.FederationCreated, ev.RoundOpened, ev.ModelReleased, ev.FederationCompleted),
    (REGISTRY,),
    (INGESTION, PRIVACY, AGGREGATION, VALIDATION, REGISTRY, COMPLIANCE, PARTICIPANT, KEY_CUSTODY),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
SUBMISSIONS = Topic(
    "fedstream.submissions",
    "Model updates submitted by participants (tensors by claim check).",
    (ev.UpdateSubmitted,),
    (PARTICIPANT,),
    (INGESTION, COMPLIANCE),
    partitions=6,
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
HEARTBEATS = Topic(
    "fedstream.heartbeats",
    "Participant liveness; kept in Redis with a TTL.",
    (ev.ParticipantHeartbeat,),
    (PARTICIPANT,),
    (INGESTION, VALIDATION, COMPLIANCE),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
ADMISSIONS = Topic(
    "fedstream.admissions",
    "Admission decisions: accepted, or rejected with a machine-readable reason.",
    (ev.UpdateAccepted, ev.UpdateRejected),
    (INGESTION, AGGREGATION),
    (PRIVACY, VALIDATION, REGISTRY, COMPLIANCE, PARTICIPANT),
    partitions=6,
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
PRIVACY_LEDGER = Topic(
    "fedstream.privacy",
    "Privacy charges (only charged updates are aggregated) and refusals of updates that would overspend a budget.",
    (ev.PrivacyCharged, ev.BudgetExhausted),
    (PRIVACY,),
    (AGGREGATION, VALIDATION, REGISTRY, COMPLIANCE, PARTICIPANT),
    partitions=6,
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
AGGREGATES = Topic(
    "fedstream.aggregates",
    "Round outcomes from the aggregator: a candidate model, or a failed round.",
    (ev.RoundAggregated, ev.RoundFailed),
    (AGGREGATION, KEY_CUSTODY),  # the custodian publishes an HE round's decrypted aggregate
    (INGESTION, PRIVACY, VALIDATION, REGISTRY, COMPLIANCE, PARTICIPANT),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
ENCRYPTED_AGGREGATES = Topic(
    "fedstream.encrypted-aggregates",
    "HE rounds: the aggregator's weighted ciphertext sum of a closed round, for the key custodian to decrypt.",
    he.REQUESTS,
    (AGGREGATION,),
    (KEY_CUSTODY, COMPLIANCE),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
CUSTODY = Topic(
    "fedstream.custody",
    "The key custodian's facts: a federation's public HE context, each decryption and each refusal.",
    he.FACTS,
    (KEY_CUSTODY,),
    (AGGREGATION, COMPLIANCE, PARTICIPANT),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
EVALUATIONS = Topic(
    "fedstream.evaluations",
    "Participants' federated evaluation of candidate models on their holdouts.",
    (ev.EvaluationReported,),
    (PARTICIPANT,),
    (VALIDATION, COMPLIANCE),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
VALIDATIONS = Topic(
    "fedstream.validations",
    "Validation verdicts on candidate models.",
    (ev.ModelValidated, ev.ModelRejected),
    (VALIDATION,),
    (REGISTRY, COMPLIANCE),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
IDENTITY = Topic(
    "fedstream.identity",
    "Participant identity facts from the registry: enrolled keys, revocations, consents, BAAs (keyed by organisation).",
    idn.FACTS,
    (REGISTRY,),
    (INGESTION, VALIDATION, COMPLIANCE),  # each verifies participants' signatures against its own key projection
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
ALERTS = Topic(
    "fedstream.alerts",
    "Alerts raised by validation's stream processor over windowed participant and round health (critical, warning, info).",
    (al.AlertRaised,),
    (VALIDATION,),
    (COMPLIANCE, OPERATOR),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
AUDIT = Topic(
    "fedstream.audit",
    "Compliance's own facts: signed Merkle checkpoints of the audit trail (verifiable from these events alone), "
    "erasures (the registry excludes an erased participant) and their certificates.",
    cp.FACTS,
    (COMPLIANCE,),
    (COMPLIANCE, REGISTRY, OPERATOR),
    # Checkpoints are what an outsider verifies the trail against: they never expire.
    config=(("retention.ms", "-1"),),
)
ACCESS = Topic(
    "fedstream.access",
    "Reads of participant data through the admin/compliance API, each one audited by compliance.",
    acc.FACTS,
    (ADMIN_API,),
    (COMPLIANCE,),
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)
DEAD_LETTER = Topic(
    "fedstream.deadletter",
    "Messages no consumer could process, byte for byte, with the error in headers.",
    (),
    (*SERVICES, KEY_CUSTODY),
    (OPERATOR,),
    # Copies of any topic's messages, participant ids included.
    config=cp.PARTICIPANT_TOPIC_CONFIG,
)

ALL_TOPICS: tuple[Topic, ...] = (
    COMMANDS,
    ROUNDS,
    SUBMISSIONS,
    HEARTBEATS,
    ADMISSIONS,
    PRIVACY_LEDGER,
    AGGREGATES,
    ENCRYPTED_AGGREGATES,
    CUSTODY,
    EVALUATIONS,
    VALIDATIONS,
    IDENTITY,
    ALERTS,
    AUDIT,
    ACCESS,
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
