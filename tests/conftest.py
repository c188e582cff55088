"""The real stack for the contract and integration suites: Apache Kafka (KRaft), PostgreSQL and Redis
started by the project's own setup in a temporary state directory, migrations applied, topics created
(``infra``); plus the six services running as separate supervised processes (``stack``).

Unit tests use neither fixture, so `pytest tests/unit` starts nothing."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedstream.messaging.kafka import ensure_topics
from fedstream.observability.settings import ObservabilitySettings
from fedstream.observability.tracing import setup_tracing
from fedstream.settings import Endpoints, StackSettings
from fedstream.storage.postgres import prepare_database
from fedstream.supervisor import Supervisor


@dataclass
class Infra:
    settings: StackSettings
    endpoints: Endpoints


@dataclass
class Stack(Infra):
    services: Supervisor


@pytest.fixture(scope="session")
async def infra(tmp_path_factory: pytest.TempPathFactory):
    from fedstream.stack import LocalStack

    state_dir = Path(os.environ.get("FEDSTREAM_TEST_STATE_DIR") or tmp_path_factory.mktemp("stack"))
    settings = StackSettings(state_dir=state_dir)
    local = LocalStack(settings)
    await asyncio.to_thread(local.up)
    try:
        endpoints = settings.resolved()
        await _provision(endpoints)
        yield Infra(settings, endpoints)
    finally:
        await asyncio.to_thread(local.down)


@pytest.fixture(scope="session")
def stack(infra: Infra):
    """The six services, each with a /metrics endpoint and spans written as JSON lines (as is this process's
    participant runtime), so tests can check one trace crosses every service."""
    traces_dir = infra.settings.state_dir / "traces"
    env = dict(os.environ, FEDSTREAM_STATE_DIR=str(infra.settings.state_dir), FEDSTREAM_TRACES="file",
               FEDSTREAM_TRACES_DIR=str(traces_dir))
    setup_tracing("participant", ObservabilitySettings(traces="file", traces_dir=traces_dir))
    services = Supervisor(infra.settings.state_dir / "logs", env=env, restart_backoff_s=0.5, metrics=True)
    services.start()
    try:
        yield Stack(infra.settings, infra.endpoints, services)
    finally:
        services.stop()


async def _provision(endpoints: Endpoints) -> None:
    await prepare_database(endpoints.database_url, endpoints.login_urls)  # as the owner; then the services connect as fedstream_app
    await ensure_topics(endpoints.kafka_bootstrap_servers)
