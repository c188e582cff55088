"""ACLs derived from the topic table: least privilege for participants, services and the operator."""

from __future__ import annotations

from fedstream.messaging.acls import (
    AclBinding,
    Operation,
    PatternType,
    ResourceType,
    operator_bindings,
    participant_bindings,
    platform_bindings,
    service_bindings,
    service_roles,
)
from schemas.topics import (
    ADMISSIONS,
    ALL_TOPICS,
    COMPLIANCE,
    OPERATOR,
    PARTICIPANT,
    ROUNDS,
    SERVICES,
    SUBMISSIONS,
    Topic,
)


def _topics(bindings: list[AclBinding], operation: Operation) -> set[str]:
    return {
        b.resource_name
        for b in bindings
        if b.resource_type is ResourceType.TOPIC and b.pattern is PatternType.LITERAL and b.operation is operation
    }


def test_a_participant_writes_submissions_and_reads_rounds_but_nothing_else():
    bindings = participant_bindings("hospital-1")
    writes, reads = _topics(bindings, Operation.WRITE), _topics(bindings, Operation.READ)
    assert SUBMISSIONS.name in writes and ROUNDS.name in reads
    assert ADMISSIONS.name not in writes
    assert SUBMISSIONS.name not in reads
    assert writes == {t.name for t in ALL_TOPICS if PARTICIPANT in t.producers}
    assert reads == {t.name for t in ALL_TOPICS if PARTICIPANT in t.consumers}
    assert {b.principal for b in bindings} == {"User:participant.hospital-1"}


def test_a_participant_gets_its_own_group_only():
    groups = [b for b in participant_bindings("hospital-1") if b.resource_type is ResourceType.GROUP]
    # literal: a prefixed grant for "hospital-1" would also cover "hospital-10"'s group
    assert groups == [
        AclBinding("User:participant.hospital-1", ResourceType.GROUP, "fedstream-participant-hospital-1",
                   PatternType.LITERAL, Operation.READ)
    ]


def test_each_service_reads_what_it_consumes_and_writes_what_it_produces():
    for service in SERVICES:
        bindings = service_bindings(service)
        assert _topics(bindings, Operation.WRITE) == {t.name for t in ALL_TOPICS if service in t.producers}
        assert _topics(bindings, Operation.READ) == {t.name for t in ALL_TOPICS if service in t.consumers}
        assert {b.principal for b in bindings} == {f"User:service.{service}"}


def test_compliance_reads_every_topic_that_lists_it():
    reads = _topics(service_bindings(COMPLIANCE), Operation.READ)
    assert reads == {t.name for t in ALL_TOPICS if COMPLIANCE in t.consumers}
    assert SUBMISSIONS.name in reads and ROUNDS.name in reads


def test_services_may_check_that_topics_exist_without_reading_them():
    describe = [b for b in service_bindings("ingestion") if b.operation is Operation.DESCRIBE]
    assert describe == [
        AclBinding("User:service.ingestion", ResourceType.TOPIC, "fedstream.", PatternType.PREFIXED, Operation.DESCRIBE)
    ]


def test_a_new_topic_grants_exactly_what_its_row_says():
    extra = Topic("fedstream.new", "a topic added later", (), ("registry",), ("validation", PARTICIPANT))
    topics = (*ALL_TOPICS, extra)
    assert extra.name in _topics(service_bindings("registry", topics), Operation.WRITE)
    assert extra.name in _topics(service_bindings("validation", topics), Operation.READ)
    assert extra.name in _topics(participant_bindings("p", topics), Operation.READ)
    assert extra.name not in _topics(service_bindings("ingestion", topics), Operation.READ)


def test_the_platform_bindings_cover_every_service_and_the_operator():
    principals = {b.principal for b in platform_bindings()}
    assert principals == {f"User:service.{s}" for s in service_roles()} | {"User:operator"}
    assert set(operator_bindings()) <= set(platform_bindings())


def test_every_platform_role_the_table_names_is_a_service_principal():
    """Roles beyond the six (key custody, the admin API) get their own principal, never the admin's."""
    extra = Topic("fedstream.x", "x", (), ("custodian",), (PARTICIPANT, OPERATOR))
    roles = service_roles((*ALL_TOPICS, extra))
    assert roles[: len(SERVICES)] == SERVICES
    assert "custodian" in roles
    assert PARTICIPANT not in roles and OPERATOR not in roles
