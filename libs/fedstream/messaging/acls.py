"""Kafka principals and ACLs, derived from the topic table in ``schemas/topics.py``.

Least privilege, read straight off the table: a role may WRITE exactly the topics that list it as a
producer and READ exactly those that list it as a consumer, plus its own consumer group. Services also
DESCRIBE every ``fedstream.`` topic, because each one checks at start that all topics exist (names and
partition counts only, no data). The broker denies everything else
(``allow.everyone.if.no.acl.found=false``), so a topic added to the table is closed until it says who
may use it.

aiokafka's admin client has no ``create_acls``, but its protocol module carries CreateAcls (API key
30); ``apply_acls`` sends one batched request of that type.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import CreateAclsRequest_v1
from aiokafka.protocol.api import Request

from schemas.topics import ALL_TOPICS, OPERATOR, PARTICIPANT, SERVICES, Topic

TOPIC_PREFIX = "fedstream."
ADMIN_USER = "fedstream-admin"


# Kafka's wire codes (org.apache.kafka.common.acl / resource); aiokafka does not name them.
class ResourceType(IntEnum):
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4


class PatternType(IntEnum):
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    READ = 3
    WRITE = 4
    DESCRIBE = 8


ALLOW = 3
ANY_HOST = "*"


@dataclass(frozen=True, order=True)
class AclBinding:
    """One ALLOW rule: ``principal`` may ``operation`` on the resource (any host)."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern: PatternType
    operation: Operation


class AclError(RuntimeError):
    """The broker refused to create an ACL."""


# --- principals --------------------------------------------------------------------------------
# Prefixes keep the name spaces apart: a participant enrolled as "ingestion" must not become the
# ingestion service's principal.


def service_user(service: str) -> str:
    return f"service.{service}"


def participant_user(participant_id: str) -> str:
    return f"participant.{participant_id}"


def operator_user() -> str:
    return "operator"


def principal(user: str) -> str:
    return f"User:{user}"


# --- consumer groups (the names service.py and the participant runtime use) -------------------


def service_group(service: str) -> str:
    return f"fedstream-{service}"


def participant_group(participant_id: str) -> str:
    return f"fedstream-participant-{participant_id}"


# --- bindings ----------------------------------------------------------------------------------


def topic_bindings(role: str, user: str, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[AclBinding]:
    """WRITE what ``role`` produces, READ what it consumes, per the topic table."""
    who = principal(user)
    bindings = []
    for topic in topics:
        if role in topic.producers:
            bindings.append(AclBinding(who, ResourceType.TOPIC, topic.name, PatternType.LITERAL, Operation.WRITE))
        if role in topic.consumers:
            bindings.append(AclBinding(who, ResourceType.TOPIC, topic.name, PatternType.LITERAL, Operation.READ))
    return bindings


def service_bindings(service: str, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[AclBinding]:
    who = principal(service_user(service))
    return [
        *topic_bindings(service, service_user(service), topics),
        AclBinding(who, ResourceType.TOPIC, TOPIC_PREFIX, PatternType.PREFIXED, Operation.DESCRIBE),
        # Prefixed: a service may run sharded consumer groups ("fedstream-aggregation-eu").
        AclBinding(who, ResourceType.GROUP, service_group(service), PatternType.PREFIXED, Operation.READ),
    ]


def participant_bindings(participant_id: str, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[AclBinding]:
    user = participant_user(participant_id)
    return [
        *topic_bindings(PARTICIPANT, user, topics),
        # Literal, not prefixed: "hospital-1" must not join the group of "hospital-10".
        AclBinding(principal(user), ResourceType.GROUP, participant_group(participant_id), PatternType.LITERAL, Operation.READ),
    ]


def operator_bindings(topics: tuple[Topic, ...] = ALL_TOPICS) -> list[AclBinding]:
    user = operator_user()
    return [
        *topic_bindings(OPERATOR, user, topics),
        AclBinding(principal(user), ResourceType.GROUP, "fedstream-operator", PatternType.PREFIXED, Operation.READ),
    ]


def service_roles(topics: tuple[Topic, ...] = ALL_TOPICS) -> tuple[str, ...]:
    """The six services and every other platform role the table names (key custody, the admin API...)."""
    named = {role for t in topics for role in (*t.producers, *t.consumers)} - {PARTICIPANT, OPERATOR}
    return (*SERVICES, *sorted(named - set(SERVICES)))


def platform_bindings(topics: tuple[Topic, ...] = ALL_TOPICS) -> list[AclBinding]:
    """Every service's and the operator's ACLs (participants are added as they are enrolled)."""
    bindings = [b for service in service_roles(topics) for b in service_bindings(service, topics)]
    return sorted(bindings + operator_bindings(topics))


# --- applying them -----------------------------------------------------------------------------


class _CreateAcls(Request[CreateAclsRequest_v1]):
    """CreateAcls v1 with many creations in one request (aiokafka's builder takes one)."""

    API_KEY = 30

    def __init__(self, bindings: list[AclBinding]) -> None:
        self.bindings = bindings

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class(
            [
                (b.resource_type, b.resource_name, b.pattern, b.principal, ANY_HOST, b.operation, ALLOW)
                for b in self.bindings
            ]
        )


async def apply_acls(admin: AIOKafkaAdminClient, bindings: list[AclBinding]) -> None:
    """Create the ACLs (idempotent: the broker keeps one copy of an identical binding).

    Needs a principal with ALTER on the cluster (the admin, a super user)."""
    if not bindings:
        return
    response = await admin._send_request(_CreateAcls(bindings))  # noqa: SLF001 - no public API for this request
    failures = [
        f"{b.principal} {b.operation.name} {b.resource_type.name} {b.resource_name}: error {code} {message}"
        for b, (code, message) in zip(bindings, response.creation_responses, strict=True)
        if code != 0
    ]
    if failures:
        raise AclError("the broker refused ACLs:\n" + "\n".join(failures))
