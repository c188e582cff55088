"""Composition root of the admin API: a PostgreSQL pool, a Kafka producer and the key manager that seals
TOTP secrets, opened with the app and closed with it; nothing connects at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fedstream.api.adapters import KafkaPublisher, PostgresReadStore, PostgresUserDirectory
from fedstream.api.app import ApiPorts, create_app
from fedstream.api.totp_secrets import TotpSecretSealer
from fedstream.messaging.kafka import ensure_topics, make_producer
from fedstream.security.keys import open_key_manager
from fedstream.settings import Endpoints
from fedstream.storage.postgres import create_pool, wait_until_migrated
from schemas.topics import ACCESS, ADMIN_API

log = logging.getLogger(__name__)


class NoKeyManager(RuntimeError):
    """The API seals TOTP secrets at rest and will not run without a key manager to seal them with."""


def totp_sealer(endpoints: Endpoints) -> TotpSecretSealer:
    if endpoints.key_manager_url is None:
        raise NoKeyManager("the admin API seals TOTP secrets: set FEDSTREAM_KEY_MANAGER_URL (local:///dir or vault://)")
    return TotpSecretSealer(open_key_manager(endpoints.key_manager_url))


async def warn_about_users_without_totp(users: PostgresUserDirectory) -> None:
    waiting = await users.users_without_totp()
    if waiting:
        log.warning("%d API users have no TOTP secret (plaintext ones were dropped by migration 020) and cannot take "
                    "privileged actions until one is issued: fedstream api user rotate-totp %s", len(waiting), " | ".join(waiting))


def build_app(endpoints: Endpoints) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await wait_until_migrated(endpoints.api_database_url)  # the API's own login: it may not migrate
        await ensure_topics(endpoints, (ACCESS,))
        sealer = totp_sealer(endpoints)  # before anything opens: no key manager, no API
        pool = await create_pool(endpoints.api_database_url, max_size=8, application_name=f"fedstream-{ADMIN_API}")
        producer = make_producer(endpoints, f"fedstream-{ADMIN_API}")
        await producer.start()
        users = PostgresUserDirectory(pool, sealer)
        await warn_about_users_without_totp(users)
        app.state.ports = ApiPorts(users, PostgresReadStore(pool), KafkaPublisher(producer))
        try:
            yield
        finally:
            await producer.stop()
            await pool.close()

    return create_app(None, lifespan=lifespan)  # the ports arrive with the lifespan


def serve(endpoints: Endpoints, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(build_app(endpoints), host=host, port=port, log_level="info")
