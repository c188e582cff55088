"""Benchmark participants: pre-computed updates submitted as fast as the producer allows."""

from __future__ import annotations

import time
from uuid import uuid4

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from fedstream.messaging.codec import MalformedMessage, decode, encode
from fedstream.messaging.consumer import to_record
from fedstream.messaging.kafka import make_producer, send_records, wait_caught_up
from fedstream.participant.identity import ParticipantKeys, enrol
from fedstream.participant.simulation import create_federation
from fedstream.settings import Endpoints
from fedstream.storage import tensors
from fedstream.storage.blobs import open_blob_store
from schemas import events as ev
from schemas.base import BlobRef
from schemas.federation import FederationSpec, parse_spec
from schemas.topics import AGGREGATES, ROUNDS, topic_for


def federation_spec(federation_id: str, participants: int, params: int, rounds: int, quorum: int) -> FederationSpec:
    """A logistic model with exactly ``params`` parameters (params-1 weights and a bias)."""
    people = ", ".join(f"{{participant_id: site-{i:05d}, organisation: org-{i:05d}}}" for i in range(participants))
    return parse_spec(f"""
federation_id: {federation_id}
project_name: benchmark
use_case: clinical_prediction
participants: [{people}]
model: {{architecture: logistic, input_dim: {params - 1}}}
training: {{rounds: {rounds}, quorum: {quorum}, round_deadline_s: 600, evaluation_deadline_s: 60}}
validation: {{metric: accuracy, min_metric: 0.0, max_regression: 1.0, convergence_threshold: 0.0, patience: 10000}}
""")


# One identity per bench participant for the whole bench process: enrolled once, reused by every run.
KEYS, ENROLLED = ParticipantKeys(), set()


class BenchParticipants:
    def __init__(self, endpoints: Endpoints, spec: FederationSpec, evaluate: bool = False) -> None:
        self.endpoints, self.spec, self.evaluate = endpoints, spec, evaluate
        self.blobs = open_blob_store(endpoints.blob_store_url)
        self.producer = make_producer(endpoints, "bench")
        self.consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers, enable_auto_commit=False,
                                         fetch_max_wait_ms=5)
        self.seen: list[tuple[float, ev.Event]] = []
        self.refs: list[BlobRef] = []
        self.created: ev.FederationCreated | None = None

    async def __aenter__(self) -> "BenchParticipants":
        await self.producer.start()
        await self.consumer.start()
        partitions = [TopicPartition(t.name, p) for t in (ROUNDS, AGGREGATES) for p in range(t.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before anything is published
            await self.consumer.position(tp)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.producer.stop()

    async def start_federation(self) -> None:
        new = [(p.participant_id, p.organisation) for p in self.spec.participants if p.participant_id not in ENROLLED]
        if new:
            await enrol(self.endpoints, new, KEYS, timeout=600)
            ENROLLED.update(pid for pid, _ in new)
        await create_federation(self.endpoints, self.spec)
        self.created = await self.wait(ev.FederationCreated)
        await self.wait(ev.RoundOpened, round_number=1)
        # Real participants train for a while after a round opens; these submit at once, so first let the
        # services that admit and count updates catch up on the round (its events travel on another topic).
        for group in ("fedstream-ingestion", "fedstream-aggregation"):
            await wait_caught_up(self.endpoints, group, (ROUNDS,))

    async def prepare_updates(self, variants: int) -> None:
        rng = np.random.default_rng(0)
        for _ in range(variants):
            weights = {p.name: rng.normal(size=p.shape).astype(p.dtype) for p in self.created.params}
            self.refs.append(await self.blobs.put(tensors.to_bytes(weights)))

    async def submit_round_and_wait(self, round_number: int) -> float:
        records = [
            encode(KEYS.sign(ev.UpdateSubmitted(
                source=f"participant/{pid}", federation_id=self.spec.federation_id, update_id=uuid4(), participant_id=pid,
                round=round_number, base_model_version=round_number - 1, update=self.refs[i % len(self.refs)],
                num_examples=100 + i, train_loss=0.5,
            )), "fedstream.submissions")
            for i, pid in enumerate(self.spec.participant_ids)
        ]
        started = time.perf_counter()
        await send_records(self.producer, records)
        await self.wait(ev.RoundAggregated, round_number=round_number)
        return time.perf_counter() - started

    async def run_rounds(self, rounds: int) -> list[float]:
        latencies = []
        for r in range(1, rounds + 1):
            await self.wait(ev.RoundOpened, round_number=r)
            await self.submit_round_and_wait(r)
            aggregated = self._latest(ev.RoundAggregated, r)
            await self._evaluate(aggregated)
            released_at, _ = await self._wait_timed(ev.ModelReleased, r)
            latencies.append(released_at - aggregated.time.timestamp())
        return latencies

    async def _evaluate(self, aggregated: ev.RoundAggregated) -> None:
        reports = [  # signed like every participant message: validation counts only verified reports
            KEYS.sign(ev.EvaluationReported(source=f"participant/{c.participant_id}", federation_id=self.spec.federation_id,
                                            participant_id=c.participant_id, round=aggregated.round,
                                            candidate_sha256=aggregated.aggregate.sha256, num_examples=100, loss=0.3,
                                            accuracy=0.9, auc=0.95))
            for c in aggregated.contributions
        ]
        await send_records(self.producer, [encode(e, topic_for(type(e)).name) for e in reports])

    async def wait(self, kind: type, round_number: int | None = None, timeout: float = 600) -> ev.Event:
        return (await self._wait_timed(kind, round_number, timeout))[1]

    async def _wait_timed(self, kind: type, round_number: int | None = None, timeout: float = 600) -> tuple[float, ev.Event]:
        deadline = time.monotonic() + timeout
        while True:
            for at, e in self.seen:
                if isinstance(e, kind) and (round_number is None or e.round_number == round_number):
                    return at, e
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind.__name__} for round {round_number} within {timeout}s")
            batches = await self.consumer.getmany(timeout_ms=100)
            now = time.time()
            for messages in batches.values():
                for m in messages:
                    if m.key != self.spec.federation_id.encode():
                        continue
                    try:
                        self.seen.append((now, decode(to_record(m))))
                    except MalformedMessage:
                        pass

    def _latest(self, kind: type, round_number: int) -> ev.Event:
        return next(e for _, e in reversed(self.seen) if isinstance(e, kind) and e.round_number == round_number)
