"""aiokafka adapters: producer and consumer factories and topic provisioning.

Producers are idempotent with ``acks=all`` where the broker supports it (Apache Kafka); on Tansu,
which has no idempotent producer, they fall back to plain ``acks=all`` — correctness never depended
on it, because every consumer deduplicates by event id.

Every client made here carries the endpoints' transport security (``client_security``): TLS verified
against the configured CA and a SASL/SCRAM login, or nothing on a plaintext broker.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from fedstream.messaging.codec import Record
from fedstream.settings import Endpoints
from schemas.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


class KafkaSecurityError(ValueError):
    """The Kafka client security settings do not fit together."""


def client_security(endpoints: Endpoints) -> dict[str, Any]:
    """aiokafka keyword arguments for the endpoints' security protocol, login and CA."""
    password = endpoints.kafka_password.get_secret_value() if endpoints.kafka_password else None
    return security_options(
        endpoints.kafka_security_protocol,
        mechanism=endpoints.kafka_sasl_mechanism,
        username=endpoints.kafka_username,
        password=password,
        ca_file=endpoints.kafka_ca_file,
    )


def security_options(
    protocol: str, *, mechanism: str | None = None, username: str | None = None, password: str | None = None,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """The same for callers without Endpoints (the local stack's readiness probe). Pure but for the CA read."""
    protocol = protocol.upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise KafkaSecurityError(f"Kafka security protocol {protocol!r}: expected one of {', '.join(SECURITY_PROTOCOLS)}")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        if not (username and password):
            raise KafkaSecurityError(f"{protocol} needs FEDSTREAM_KAFKA_USERNAME and FEDSTREAM_KAFKA_PASSWORD")
        options.update(
            sasl_mechanism=(mechanism or "SCRAM-SHA-512").upper(),
            sasl_plain_username=username,
            sasl_plain_password=password,
        )
    if protocol.endswith("SSL"):
        # Without a CA file the system trust store is used (a broker with a public certificate).
        options["ssl_context"] = tls_context(ca_file)
    return options


@lru_cache(maxsize=8)
def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate and host name checked (aiokafka's helper enforces both); one context per CA file."""
    return create_ssl_context(cafile=ca_file)


def make_producer(endpoints: Endpoints, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        client_id=client_id,
        **client_security(endpoints),
        acks="all",
        enable_idempotence=endpoints.supports_idempotent_producer,
        linger_ms=2,
        request_timeout_ms=30_000,
    )


def make_consumer(endpoints: Endpoints, group_id: str, topics: tuple[Topic, ...], client_id: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *(t.name for t in topics),
        bootstrap_servers=endpoints.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        **client_security(endpoints),
        enable_auto_commit=False,  # offsets are committed only after the handler's transaction
        auto_offset_reset="earliest",
        fetch_max_wait_ms=500,  # a long poll: the broker answers as soon as one record arrives
        max_poll_records=500,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )


async def send_records(producer: AIOKafkaProducer, records: list[Record]) -> None:
    """Send in order and wait for every acknowledgement."""
    futures = [
        await producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers)) for r in records
    ]
    if futures:
        await asyncio.gather(*futures)


def make_admin(endpoints: Endpoints, client_id: str = "fedstream-admin", **options: Any) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=endpoints.kafka_bootstrap_servers, client_id=client_id, **client_security(endpoints), **options
    )


async def ensure_topics(where: Endpoints | str, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[str]:
    """Create missing topics (idempotent). Returns the names created now.

    ``where``: the endpoints (with their security), or bare bootstrap servers of a plaintext broker."""
    if isinstance(where, str):
        admin = AIOKafkaAdminClient(bootstrap_servers=where, client_id="fedstream-provisioner")
    else:
        admin = make_admin(where, "fedstream-provisioner")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t.name, num_partitions=t.partitions, replication_factor=1, topic_configs=dict(t.config))
                     for t in missing]
                )
            except TopicAlreadyExistsError:  # another process won the race: fine
                pass
        return [t.name for t in missing]
    finally:
        await admin.close()


async def align_topic_configs(endpoints: Endpoints, topics: tuple[Topic, ...] = ALL_TOPICS) -> list[str]:
    """Bring existing topics to their declared settings (``Topic.config``, e.g. retention bounded by the
    erasure deadline): topics created by an older version keep the settings they were created with
    otherwise. Returns the topics the broker refused to change (logged; e.g. a broker without
    AlterConfigs, or a login without the right): the erasure certificate reports the retention that applies."""
    declared = [t for t in topics if t.config]
    if not declared:
        return []
    admin = make_admin(endpoints, "fedstream-provisioner")
    await admin.start()
    try:
        responses = await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t.name, configs=dict(t.config)) for t in declared]
        )
    except KafkaError as exc:
        log.warning("could not align topic settings (%s): topics keep the settings they were created with", exc)
        return [t.name for t in declared]
    finally:
        await admin.close()
    refused = [(name, code, message) for response in responses for code, message, _, name in response.resources if code]
    for name, code, message in refused:
        log.warning("broker refused the declared settings of %s (error %d: %s)", name, code, message)
    return [name for name, _, _ in refused]


async def wait_caught_up(endpoints: Endpoints, group: str, topics: tuple[Topic, ...], timeout: float = 60) -> None:
    """Until the consumer group has committed offsets at the end of every partition of ``topics`` (tests and
    benchmarks wait on this condition instead of sleeping)."""
    admin = make_admin(endpoints)
    probe = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers, **client_security(endpoints))
    await admin.start()
    await probe.start()
    try:
        partitions = [TopicPartition(t.name, p) for t in topics for p in range(t.partitions)]
        ends = await probe.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = {tp: end for tp, end in ends.items() if end > 0 and (committed.get(tp) is None or committed[tp].offset < end)}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} still behind on {sorted(map(str, behind))}")
            await asyncio.sleep(0.1)  # polling a condition in Kafka, bounded by the deadline
    finally:
        await probe.stop()
        await admin.close()
