"""`fedstream stack up` with FEDSTREAM_KAFKA_SECURITY=sasl_ssl: what it records lets every client connect
securely with no further configuration, and each service gets its own login."""

from __future__ import annotations

import asyncio
import json
from uuid import uuid4

import pytest
from aiokafka.errors import TopicAuthorizationFailedError
from redis.asyncio import Redis as Client
from redis.exceptions import AuthenticationError, ResponseError

from fedstream.messaging.kafka import ensure_topics, make_consumer, make_producer
from fedstream.settings import StackSettings
from fedstream.stack.kafka_security import service_login_env
from schemas.topics import ADMISSIONS, INGESTION, SUBMISSIONS

pytestmark = pytest.mark.integration


async def test_a_secured_local_stack_is_usable_by_its_own_settings(tmp_path, monkeypatch):
    from fedstream.stack import LocalStack

    for name in ("FEDSTREAM_KAFKA_BOOTSTRAP_SERVERS", "FEDSTREAM_REDIS_URL", "FEDSTREAM_DATABASE_URL",
                 "FEDSTREAM_KAFKA_USERNAME", "FEDSTREAM_KAFKA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    settings = StackSettings(state_dir=tmp_path, kafka_security="sasl_ssl")
    local = LocalStack(settings)
    await asyncio.to_thread(local.up)
    try:
        # A tool with no login of its own: the local admin, over TLS.
        endpoints = StackSettings(state_dir=tmp_path).resolved()
        assert endpoints.kafka_security_protocol == "SASL_SSL"
        await ensure_topics(endpoints)

        # Redis asks for the password the settings folded into the URL.
        assert await Client.from_url(endpoints.redis_url).ping()
        recorded = json.loads(settings.endpoints_path().read_text())
        assert "password" not in json.dumps({k: v for k, v in recorded.items() if not k.endswith("_file")})
        with pytest.raises((AuthenticationError, ResponseError)):
            await Client.from_url(recorded["redis_url"]).set("k", "v")  # the bare address: refused

        submission = f"update {uuid4()}".encode()
        admin_producer = make_producer(endpoints, "admin-test")
        await admin_producer.start()
        await admin_producer.send_and_wait(SUBMISSIONS.name, submission, key=b"k")
        await admin_producer.stop()

        # The supervisor's environment for ingestion resolves to ingestion's own, limited principal.
        env = service_login_env(INGESTION, {"FEDSTREAM_STATE_DIR": str(tmp_path)})
        assert env["FEDSTREAM_KAFKA_USERNAME"] == "service.ingestion"
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        ingestion = StackSettings(state_dir=tmp_path).resolved()
        assert ingestion.kafka_username == "service.ingestion"
        producer = make_producer(ingestion, "ingestion-test")
        await producer.start()
        try:
            await producer.send_and_wait(ADMISSIONS.name, b"verdict", key=b"k")
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(SUBMISSIONS.name, f"forged {uuid4()}".encode(), key=b"k")
        finally:
            await producer.stop()
        consumer = make_consumer(ingestion, "fedstream-ingestion", (SUBMISSIONS,), "ingestion-test")
        await consumer.start()
        try:  # joins its own group and reads what participants submitted
            async with asyncio.timeout(60):
                while (await consumer.getone()).value != submission:
                    pass
        finally:
            await consumer.stop()
    finally:
        await asyncio.to_thread(local.down, True)
