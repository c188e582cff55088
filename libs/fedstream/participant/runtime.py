"""The participant runtime: next to a hospital's data, it trains on each round it is selected for,
evaluates each candidate model on its holdout, and publishes only model updates (by claim check).

One runtime can host several local participants (``fedstream simulate`` runs fifteen in one
process) sharing one consumer and one producer; training runs in worker threads so the event loop
keeps heartbeats and consumption going.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from fedstream.messaging.codec import MalformedMessage, decode, encode
from fedstream.messaging.consumer import to_record
from fedstream.messaging.kafka import send_records
from fedstream.messaging.tracing import child_traceparent
from fedstream.observability import tracing
from fedstream.ml.data import LocalDataset
from fedstream.participant.identity import ParticipantKeys, default_keys
from fedstream.storage import tensors
from fedstream.storage.blobs import SAFETENSORS, BlobStore
from schemas import events as ev
from schemas.base import Event
from schemas.custody import HeContextPublished
from schemas.federation import FederationSpec
from schemas.topics import PARTICIPANT, topic_for

log = logging.getLogger(__name__)


@dataclass
class LocalParticipant:
    participant_id: str
    data: LocalDataset
    seed: int = 0

    @property
    def dataset_id(self) -> str:
        """What the ledger composes ε over (with the participant): the local dataset's name."""
        return self.data.name.lower()


@dataclass
class ParticipantStats:
    submitted: int = 0
    evaluated: int = 0
    rejected: list[ev.UpdateRejected] = field(default_factory=list)
    epsilon: float | None = None  # cumulative ε the ledger charged (DP federations)
    exhausted: ev.BudgetExhausted | None = None


@dataclass
class FederationProgress:
    """What the runtime has seen of its federation: enough for a live per-round table."""

    spec: FederationSpec | None = None
    opened: dict[int, ev.RoundOpened] = field(default_factory=dict)
    released: dict[int, ev.ModelReleased] = field(default_factory=dict)
    outcomes: dict[int, Event] = field(default_factory=dict)
    completed: ev.FederationCompleted | None = None
    params: tuple = ()  # the model's ParamSpecs (HE packs updates in this order)
    he_context: HeContextPublished | None = None  # crypto: he — what updates are encrypted under


class ParticipantRuntime:
    def __init__(
        self,
        federation_id: str,
        participants: Iterable[LocalParticipant],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        blobs: BlobStore,
        training_threads: int = 2,
        heartbeat_s: float = 5.0,
        on_event: Callable[[Event], None] = lambda e: None,
        keys: ParticipantKeys | None = None,
    ) -> None:
        self.federation_id = federation_id
        self.keys = keys or default_keys()  # every message it publishes is signed with its participant's enrolled key
        self.local = {p.participant_id: p for p in participants}
        self.consumer, self.producer, self.blobs = consumer, producer, blobs
        self.executor = ThreadPoolExecutor(max_workers=training_threads, thread_name_prefix="train")
        self.heartbeat_s, self.on_event = heartbeat_s, on_event
        self.progress = FederationProgress()
        self.stats = {pid: ParticipantStats() for pid in self.local}
        self._planned_noise: dict[tuple[str, int, int, int], float] = {}
        self.done = asyncio.Event()
        self._he = None  # the federation's public HE context once published (fedstream.crypto.he)
        self._waiting_for_keys: list[tuple[ev.RoundOpened, str]] = []

    async def run(self) -> None:
        """Consume until the federation completes (or ``stop()``)."""
        heartbeat = asyncio.create_task(self._heartbeats())
        try:
            while not self.done.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=100)
                for messages in batches.values():
                    for message in messages:
                        await self._handle(to_record(message))
                if batches:
                    await self.consumer.commit()
        finally:
            heartbeat.cancel()
            self.executor.shutdown(wait=False, cancel_futures=True)

    def stop(self) -> None:
        self.done.set()

    async def _handle(self, record) -> None:  # noqa: ANN001 - a codec Record
        try:
            event = decode(record)
        except MalformedMessage as exc:
            log.warning("ignoring an undecodable record on %s: %s", record.topic, exc)
            return
        if event.federation_id != self.federation_id:
            return
        self.on_event(event)
        with tracing.consuming(event, record.topic, record.header("traceparent")):
            # what this participant publishes in response continues the trace of what it consumed
            await self._dispatch(event, tracing.current_traceparent() or child_traceparent(record.header("traceparent")))

    async def _dispatch(self, event: Event, traceparent: str) -> None:
        match event:
            case ev.FederationCreated():
                self.progress.spec, self.progress.params = event.spec, event.params
            case HeContextPublished():
                await self._on_he_context(event)
            case ev.RoundOpened():
                self.progress.opened[event.round] = event
                if self.progress.spec is not None and self.progress.spec.encrypted and self._he is None:
                    self._waiting_for_keys.append((event, traceparent))  # trained once the public context arrives
                else:
                    await self._train_all(event, traceparent)
            case ev.RoundAggregated():
                self.progress.outcomes[event.round] = event
                await self._evaluate_all(event, traceparent)
            case ev.RoundFailed():
                self.progress.outcomes[event.round] = event
            case ev.ModelReleased():
                self.progress.released[event.round] = event
            case ev.PrivacyCharged() if event.participant_id in self.local and event.epsilon is not None:
                self.stats[event.participant_id].epsilon = event.epsilon
            case ev.BudgetExhausted() if event.participant_id in self.local:
                log.warning("%s: privacy budget exhausted in round %d (%s): %s", event.participant_id, event.round, event.reason, event.detail)
                self.stats[event.participant_id].exhausted = event
            case ev.UpdateRejected() if event.participant_id in self.local:
                log.warning("%s: update for round %d rejected (%s): %s", event.participant_id, event.round, event.reason, event.detail)
                self.stats[event.participant_id].rejected.append(event)
            case ev.FederationCompleted():
                self.progress.completed = event
                self.done.set()

    async def _train_all(self, opened: ev.RoundOpened, traceparent: str) -> None:
        selected = [p for pid, p in self.local.items() if pid in opened.participants]
        if not selected or self.progress.spec is None:
            return
        global_weights = tensors.from_bytes(await self.blobs.get(opened.global_model))
        results = await asyncio.gather(*(self._train_one(p, opened, global_weights) for p in selected))
        await self._publish(results, traceparent)

    async def _train_one(self, p: LocalParticipant, opened: ev.RoundOpened, global_weights) -> Event:  # noqa: ANN001
        from fedstream.ml.training import TrainConfig, train_local  # torch loads only where training happens

        config = TrainConfig(
            local_epochs=opened.local_epochs, learning_rate=opened.learning_rate, batch_size=opened.batch_size,
            seed=zlib.crc32(f"{p.seed}/{p.participant_id}/{opened.round}".encode()),
        )
        federation = self.progress.spec
        loop = asyncio.get_running_loop()
        privacy: ev.DpParameters | None = None
        if federation.local_dp:
            dp = await loop.run_in_executor(self.executor, self._dp_config, p, opened)
            from fedstream.privacy.dp_sgd import train_private

            result, privacy = await loop.run_in_executor(
                self.executor, train_private, federation.model, global_weights, p.data, config, dp
            )
        else:
            result = await loop.run_in_executor(self.executor, train_local, federation.model, global_weights, p.data, config)
        # sealed under this participant's own key: an erasure shreds it (fedstream.storage.envelope)
        ref = await self.blobs.put(*await self._protected(result.weights), owner=p.participant_id)
        self.stats[p.participant_id].submitted += 1
        return self.keys.sign(ev.UpdateSubmitted(
            source=f"{PARTICIPANT}/{p.participant_id}", federation_id=self.federation_id, update_id=uuid4(),
            participant_id=p.participant_id, round=opened.round, base_model_version=opened.model_version, update=ref,
            num_examples=result.num_examples, train_loss=float(result.train_loss),
            protection=_protection(privacy is not None, self._he is not None), privacy=privacy,
        ))

    async def _on_he_context(self, event: HeContextPublished) -> None:
        from fedstream.crypto import he  # TenSEAL loads only in HE federations

        data = await self.blobs.get(event.public_context)  # verified against its SHA-256: the fingerprint
        self._he = await asyncio.to_thread(he.load_public_context, data)
        self.progress.he_context = event
        waiting, self._waiting_for_keys = self._waiting_for_keys, []
        for opened, traceparent in waiting:
            await self._train_all(opened, traceparent)

    async def _protected(self, weights) -> tuple[bytes, str]:  # noqa: ANN001 - model weights
        """The update's bytes as published: safetensors, or (crypto: he) ciphertexts of it — after DP-SGD
        noise when DP is on, so the two compose."""
        if self._he is None:
            return tensors.to_bytes(weights), SAFETENSORS
        from fedstream.crypto import he
        from fedstream.crypto.he_packing import flatten

        spec = self.progress.spec.he
        flat = flatten(weights, self.progress.params)
        values = he.quantise(flat, spec.quantisation_bits) if spec.scheme.value == "bfv" else flat
        return await asyncio.get_running_loop().run_in_executor(self.executor, he.encrypt, self._he, values), he.MEDIA_TYPE

    def _dp_config(self, p: LocalParticipant, opened: ev.RoundOpened):  # noqa: ANN202 - a DpSgdConfig
        """DP-SGD settings for this site: σ fixed by the spec, or planned so that every planned round
        together stays within the federation's budget (planned once per site and round shape)."""
        from fedstream.privacy.dp_sgd import DpSgdConfig, plan_noise

        spec = self.progress.spec
        sigma = spec.dp.noise_multiplier
        if sigma is None:
            key = (p.participant_id, p.data.num_train, opened.batch_size, opened.local_epochs)
            if key not in self._planned_noise:
                self._planned_noise[key] = plan_noise(
                    p.data.num_train, opened.batch_size, opened.local_epochs, spec.training.rounds,
                    spec.privacy.budget_epsilon, spec.privacy.delta,
                )
            sigma = self._planned_noise[key]
        return DpSgdConfig(sigma, spec.dp.clipping_norm, spec.privacy.delta, dataset_id=p.dataset_id)

    async def _evaluate_all(self, aggregated: ev.RoundAggregated, traceparent: str) -> None:
        from fedstream.ml.training import evaluate

        if self.progress.spec is None:
            return
        weights = tensors.from_bytes(await self.blobs.get(aggregated.aggregate))
        spec = self.progress.spec.model
        loop = asyncio.get_running_loop()
        reports = []
        for pid, p in self.local.items():
            result = await loop.run_in_executor(self.executor, evaluate, spec, weights, p.data)
            self.stats[pid].evaluated += 1
            reports.append(self.keys.sign(
                ev.EvaluationReported(
                    source=f"{PARTICIPANT}/{pid}", federation_id=self.federation_id, participant_id=pid,
                    round=aggregated.round, candidate_sha256=aggregated.aggregate.sha256, num_examples=result.num_examples,
                    loss=float(result.loss), accuracy=float(result.accuracy), auc=None if result.auc is None else float(result.auc),
                )
            ))
        await self._publish(reports, traceparent)

    async def _publish(self, events: list[Event], traceparent: str) -> None:
        await send_records(self.producer, [encode(e, topic_for(type(e)).name, traceparent) for e in events])

    async def _heartbeats(self) -> None:
        while True:
            # signed each beat (a fresh nonce and time): receivers refuse a replayed or stale one
            beats = [
                self.keys.sign(ev.ParticipantHeartbeat(
                    source=f"{PARTICIPANT}/{pid}", federation_id=self.federation_id, participant_id=pid,
                    ttl_s=self.heartbeat_s * 3,
                ))
                for pid in self.local
            ]
            try:
                await self._publish(beats, child_traceparent(None))
            except Exception as exc:  # liveness is best effort; training must not stop for it
                log.warning("heartbeat failed: %s", exc)
            await asyncio.sleep(self.heartbeat_s)


def _protection(dp: bool, encrypted: bool) -> str:
    return {(False, False): "plaintext", (True, False): "dp", (False, True): "he", (True, True): "dp_he"}[(dp, encrypted)]
