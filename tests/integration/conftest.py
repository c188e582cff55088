"""The integration suite's real stack: Apache Kafka (KRaft), PostgreSQL and Redis started by the
project's own setup in a temporary state directory, migrations applied, topics created, and the six
services running as separate supervised processes."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedstream.messaging.kafka import ensure_topics
from fedstream.settings import Endpoints, StackSettings
from fedstream.storage.postgres import apply_migrations
from fedstream.supervisor import Supervisor


@dataclass
class Stack:
    settings: StackSettings
    endpoints: Endpoints
    services: Supervisor


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    from fedstream.stack import LocalStack

    state_dir = Path(os.environ.get("FEDSTREAM_TEST_STATE_DIR") or tmp_path_factory.mktemp("stack"))
    settings = StackSettings(state_dir=state_dir)
    local = LocalStack(settings)
    local.up()
    endpoints = settings.resolved()
    asyncio.run(_provision(endpoints))
    env = dict(os.environ, FEDSTREAM_STATE_DIR=str(state_dir))
    services = Supervisor(state_dir / "logs", env=env, restart_backoff_s=0.5)
    services.start()
    try:
        yield Stack(settings, endpoints, services)
    finally:
        services.stop()
        local.down()


async def _provision(endpoints: Endpoints) -> None:
    await apply_migrations(endpoints.database_url)
    await ensure_topics(endpoints.kafka_bootstrap_servers)
