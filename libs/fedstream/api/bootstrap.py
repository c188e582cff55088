"""Composition root of the admin API: a PostgreSQL pool and a Kafka producer, opened with the app and
closed with it; nothing connects at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from fedstream.api.adapters import KafkaPublisher, PostgresReadStore, PostgresUserDirectory
from fedstream.api.app import ApiPorts, create_app
from fedstream.messaging.kafka import ensure_topics, make_producer
from fedstream.settings import Endpoints
from fedstream.storage.postgres import apply_migrations, create_pool
from schemas.topics import ACCESS, ADMIN_API


def build_app(endpoints: Endpoints) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await apply_migrations(endpoints.database_url)
        await ensure_topics(endpoints, (ACCESS,))
        pool = await create_pool(endpoints.database_url, max_size=8)
        producer = make_producer(endpoints, f"fedstream-{ADMIN_API}")
        await producer.start()
        app.state.ports = ApiPorts(PostgresUserDirectory(pool), PostgresReadStore(pool), KafkaPublisher(producer))
        try:
            yield
        finally:
            await producer.stop()
            await pool.close()

    return create_app(None, lifespan=lifespan)  # the ports arrive with the lifespan


def serve(endpoints: Endpoints, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(build_app(endpoints), host=host, port=port, log_level="info")
