"""``fedstream simulate``: N participants of one federation in one process, for demos and benchmarks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import uuid4

from fedstream.messaging.codec import encode
from fedstream.messaging.kafka import ensure_topics, make_consumer, make_producer, send_records
from fedstream.participant.identity import ParticipantKeys, default_keys, enrol
from fedstream.participant.runtime import FederationProgress, LocalParticipant, ParticipantRuntime
from fedstream.settings import Endpoints
from fedstream.storage.envelope import blob_store_for
from schemas.base import Event
from schemas.events import CreateFederation
from schemas.federation import FederationSpec
from schemas.topics import COMMANDS, OPERATOR, PARTICIPANT, topics_consumed_by


@dataclass(frozen=True)
class SimulationResult:
    progress: FederationProgress
    wall_s: float
    rejected: int


def local_participants(spec: FederationSpec) -> list[LocalParticipant]:
    from fedstream.ml.data import load_site

    n = len(spec.participants)
    return [
        LocalParticipant(
            p.participant_id,
            load_site(spec.data.dataset, i, n, spec.data.seed, patients_per_site=spec.data.patients_per_site),
            seed=spec.data.seed,
        )
        for i, p in enumerate(spec.participants)
    ]


async def create_federation(endpoints: Endpoints, spec: FederationSpec, requested_by: str = "operator") -> None:
    producer = make_producer(endpoints, "fedstream-cli")
    await producer.start()
    try:
        command = CreateFederation(source=OPERATOR, federation_id=spec.federation_id, spec=spec, requested_by=requested_by)
        await send_records(producer, [encode(command, COMMANDS.name)])
    finally:
        await producer.stop()


async def simulate(
    endpoints: Endpoints,
    spec: FederationSpec,
    create: bool = True,
    on_event: Callable[[Event], None] = lambda e: None,
    timeout_s: float | None = None,
    keys: ParticipantKeys | None = None,
) -> SimulationResult:
    from fedstream.ml.training import limit_torch_threads

    limit_torch_threads(1)  # fifteen participants share two cores: one thread each, two at a time
    await ensure_topics(endpoints)
    participants = local_participants(spec)
    # zero trust: each simulated hospital has its own key (kept under the state dir) and is enrolled,
    # with consent and a BAA, the way an operator would do it, before it can submit anything
    keys = keys or default_keys()
    await enrol(endpoints, [(p.participant_id, p.organisation) for p in spec.participants], keys)
    consumer = make_consumer(
        endpoints, f"fedstream-simulation-{spec.federation_id}-{uuid4().hex[:8]}", topics_consumed_by(PARTICIPANT),
        "fedstream-simulation",
    )
    producer = make_producer(endpoints, "fedstream-simulation")
    await consumer.start()
    await producer.start()
    runtime = ParticipantRuntime(
        spec.federation_id, participants, consumer, producer, blob_store_for(endpoints), on_event=on_event,
        keys=keys,
    )
    started = time.perf_counter()
    try:
        if create:
            await create_federation(endpoints, spec)
        await asyncio.wait_for(runtime.run(), timeout_s)
    finally:
        await consumer.stop()
        await producer.stop()
    rejected = sum(len(s.rejected) for s in runtime.stats.values())
    return SimulationResult(runtime.progress, time.perf_counter() - started, rejected)
