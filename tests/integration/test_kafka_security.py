"""The embedded Apache Kafka in sasl_ssl mode: TLS, SCRAM logins and ACLs derived from the topic table.

A broker of its own for this module (the session's `infra` stays plaintext): only Kafka, no
PostgreSQL or Redis, in a temporary state dir, stopped at the end.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from pydantic import SecretStr

from fedstream.messaging.acls import ADMIN_USER, service_group, service_user
from fedstream.messaging.kafka import client_security, ensure_topics, make_consumer, make_producer
from fedstream.messaging.logins import KafkaLogin, read_logins
from fedstream.settings import Endpoints
from fedstream.stack.kafka import ApacheKafka, find_java
from fedstream.stack.process import ProcessRecord
from schemas.topics import ADMISSIONS, INGESTION, ROUNDS, SUBMISSIONS

pytestmark = pytest.mark.integration

PARTICIPANT = "hospital-sec"
# Refusals arrive as soon as the broker answers; the bound only keeps a wrong guess from hanging the suite.
REFUSAL_DEADLINE_S = 30


@dataclass
class SecuredBroker:
    kafka: ApacheKafka
    record: ProcessRecord
    participant: KafkaLogin

    @property
    def address(self) -> str:
        return self.record.address

    @property
    def ca_file(self) -> Path:
        return self.kafka.secured.tls.ca_cert

    def login(self, username: str) -> KafkaLogin:
        return read_logins(self.kafka.secured.logins_path)[username]

    def endpoints(self, login: KafkaLogin) -> Endpoints:
        return Endpoints(
            kafka_bootstrap_servers=self.address,
            database_url="postgresql://unused",
            redis_url="redis://unused",
            blob_store_url="file:///unused",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_username=login.username,
            kafka_password=SecretStr(login.password),
            kafka_ca_file=str(self.ca_file),
        )


@pytest.fixture(scope="module")
async def secured(tmp_path_factory: pytest.TempPathFactory):
    kafka = ApacheKafka(tmp_path_factory.mktemp("secured-kafka"), find_java(), security="sasl_ssl")
    record = await kafka.ensure_running()
    try:
        broker = SecuredBroker(kafka, record, participant=await kafka.add_participant(record, PARTICIPANT))
        await ensure_topics(broker.endpoints(broker.login(ADMIN_USER)))  # as `fedstream stack up` does
        yield broker
    finally:
        await asyncio.to_thread(kafka.stop)


async def _produce(endpoints: Endpoints, topic: str, value: bytes) -> None:
    producer = make_producer(endpoints, f"test-{uuid4().hex[:6]}")
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), REFUSAL_DEADLINE_S)
    finally:
        await producer.stop()


async def _read_one(endpoints: Endpoints, group: str, topic: str, value: bytes) -> None:
    """Consume ``topic`` in ``group`` until ``value`` arrives (bounded)."""
    consumer = make_consumer(endpoints, group, (), f"test-{uuid4().hex[:6]}")
    await consumer.start()
    try:
        consumer.subscribe([topic])
        async with asyncio.timeout(REFUSAL_DEADLINE_S):
            while True:
                record = await consumer.getone()
                if record.value == value:
                    await consumer.commit()
                    return
    finally:
        await consumer.stop()


async def test_a_participant_writes_submissions_and_reads_rounds(secured):
    participant = secured.endpoints(secured.participant)
    admin = secured.endpoints(secured.login(ADMIN_USER))
    marker = uuid4().bytes
    await _produce(participant, SUBMISSIONS.name, marker)
    await _produce(admin, ROUNDS.name, marker)  # as the registry would
    await _read_one(participant, f"fedstream-participant-{PARTICIPANT}", ROUNDS.name, marker)


async def test_a_participant_may_not_write_admissions(secured):
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(secured.endpoints(secured.participant), ADMISSIONS.name, b"forged verdict")


async def test_a_participant_may_not_read_submissions(secured):
    participant = secured.endpoints(secured.participant)
    admin = secured.endpoints(secured.login(ADMIN_USER))
    await _produce(participant, SUBMISSIONS.name, b"another site's update")
    assert await _fetch_submissions(admin), "control: the same fetch as the admin sees the update"
    with pytest.raises(TopicAuthorizationFailedError):
        await _fetch_submissions(participant)


async def _fetch_submissions(endpoints: Endpoints) -> list:
    """Fetch the first partition of the submissions from the start, without a consumer group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers, enable_auto_commit=False, **client_security(endpoints)
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(SUBMISSIONS.name, p) for p in range(SUBMISSIONS.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        batches = await consumer.getmany(*partitions, timeout_ms=REFUSAL_DEADLINE_S * 1000)
        return [record for batch in batches.values() for record in batch]
    finally:
        await consumer.stop()


async def test_a_participant_may_not_join_another_participants_group(secured):
    with pytest.raises(GroupAuthorizationFailedError):
        await _read_one(secured.endpoints(secured.participant), "fedstream-participant-hospital-other", ROUNDS.name, b"x")


async def test_a_service_login_works_for_its_own_topics_only(secured):
    ingestion = secured.endpoints(secured.login(service_user(INGESTION)))
    participant = secured.endpoints(secured.participant)
    marker = uuid4().bytes
    await _produce(participant, SUBMISSIONS.name, marker)
    await _read_one(ingestion, service_group(INGESTION), SUBMISSIONS.name, marker)
    await _produce(ingestion, ADMISSIONS.name, marker)
    with pytest.raises(TopicAuthorizationFailedError):
        await _produce(ingestion, ROUNDS.name, b"only the registry opens rounds")


async def test_a_wrong_password_is_refused(secured, caplog):
    await _produce(secured.endpoints(secured.participant), SUBMISSIONS.name, b"control: the right password works")
    impostor = secured.endpoints(KafkaLogin(secured.participant.username, "not-the-password"))
    producer = make_producer(impostor, "impostor")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), REFUSAL_DEADLINE_S)
    await producer.stop()
    assert "SaslAuthenticationFailed" in caplog.text


async def test_an_unknown_user_is_refused(secured, caplog):
    stranger = secured.endpoints(KafkaLogin("participant.nobody", "guess"))
    producer = make_producer(stranger, "stranger")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), REFUSAL_DEADLINE_S)
    await producer.stop()
    assert "SaslAuthenticationFailed" in caplog.text


async def test_a_plaintext_client_cannot_talk_to_the_tls_listener(secured):
    control = AIOKafkaAdminClient(
        bootstrap_servers=secured.address, **client_security(secured.endpoints(secured.participant))
    )
    await control.start()  # the same address with TLS and a login answers
    await control.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=secured.address, request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(admin.start(), REFUSAL_DEADLINE_S)
    await admin.close()


async def test_a_client_that_does_not_trust_the_stack_ca_is_refused(secured, caplog):
    """TLS really authenticates the broker: the system trust store does not vouch for our CA."""
    options = client_security(secured.endpoints(secured.participant))
    options["ssl_context"] = ssl.create_default_context()
    admin = AIOKafkaAdminClient(bootstrap_servers=secured.address, request_timeout_ms=3000, **options)
    with pytest.raises((KafkaConnectionError, KafkaError, ssl.SSLError)):
        await asyncio.wait_for(admin.start(), REFUSAL_DEADLINE_S)
    await admin.close()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
