"""Ingestion's thin handlers: keep admission state current, admit or reject each submission."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from fedstream.messaging.transaction import Transaction
from fedstream.observability import metrics
from fedstream.storage.blobs import BlobError, BlobStore
from fedstream.storage.coordination import Coordination
from services.ingestion import domain
from services.ingestion.domain import FederationView, Rejection, RoundView
from services.ingestion.ports import AdmissionRepository
from schemas.base import Event, utcnow
from schemas.events import (
    FederationCompleted,
    FederationCreated,
    ParticipantHeartbeat,
    RoundAggregated,
    RoundFailed,
    RoundOpened,
    UpdateAccepted,
    UpdateRejected,
    UpdateSubmitted,
)
from schemas.topics import INGESTION

Tx = Transaction[AdmissionRepository]


class IngestionHandlers:
    def __init__(
        self, blobs: BlobStore, coordination: Coordination, clock: Callable[[], datetime] = utcnow, parallel_checks: int = 4
    ) -> None:
        self.blobs, self.coordination, self.clock = blobs, coordination, clock
        # A federation's admission facts never change once created, so each process keeps them.
        self._federations: dict[str, FederationView] = {}
        self._checks: dict[UUID, asyncio.Task[Rejection | None]] = {}
        self._batch_rounds: dict[str, RoundView | None] = {}
        self._check_slots = asyncio.Semaphore(parallel_checks)

    async def prefetch(self, events: list[Event]) -> None:
        """Start verifying a batch's tensors concurrently (hashing and numpy release the GIL) while the
        handlers walk the batch; payloads are not kept, only each verdict."""
        self._batch_rounds = {}  # nothing in a batch of submissions can change a round: look it up once
        for event in events:
            federation = self._federations.get(event.federation_id)
            if isinstance(event, UpdateSubmitted) and federation and event.update.size <= federation.max_update_bytes:
                if event.update_id not in self._checks:
                    self._checks[event.update_id] = asyncio.create_task(self._verify(event, federation))

    async def _verify(self, event: UpdateSubmitted, federation: FederationView) -> Rejection | None:
        async with self._check_slots:
            try:
                payload = await self.blobs.get(event.update)
            except BlobError as exc:
                return domain.blob_failure(exc)
            return await asyncio.to_thread(domain.check_tensors, payload, federation.params)

    def table(self) -> dict[type, Callable]:
        return {
            FederationCreated: self.on_federation_created,
            RoundOpened: self.on_round_opened,
            RoundAggregated: self.on_round_closed,
            RoundFailed: self.on_round_closed,
            FederationCompleted: self.on_federation_completed,
            UpdateSubmitted: self.on_submitted,
            ParticipantHeartbeat: self.on_heartbeat,
        }

    async def on_federation_created(self, event: FederationCreated, tx: Tx) -> None:
        spec = event.spec
        view = FederationView(spec.federation_id, frozenset(spec.participant_ids), event.params, spec.limits.max_update_bytes)
        await tx.repo.save_federation(view)
        self._federations[view.federation_id] = view  # a fact from the event: safe to keep even if this tx retries

    async def on_round_opened(self, event: RoundOpened, tx: Tx) -> None:
        view = RoundView(event.federation_id, event.round, frozenset(event.participants), event.deadline, open=True)
        await tx.repo.open_round(view)
        await self._cache(view)

    async def on_round_closed(self, event: RoundAggregated | RoundFailed, tx: Tx) -> None:
        await tx.repo.close_round(event.federation_id, event.round)
        current = await tx.repo.current_round(event.federation_id)
        if current is not None:
            await self._cache(current)

    async def on_federation_completed(self, event: FederationCompleted, tx: Tx) -> None:
        await tx.repo.close_federation(event.federation_id)
        current = await tx.repo.current_round(event.federation_id)
        if current is not None:
            await self._cache(current)

    async def on_heartbeat(self, event: ParticipantHeartbeat, tx: Tx) -> None:
        federation = await self._federation(event.federation_id, tx)
        if federation is None:
            return
        await self.coordination.record_heartbeat(event.federation_id, event.participant_id, event.ttl_s)
        live = await self.coordination.live_participants(event.federation_id)
        labels = {"federation": event.federation_id}
        metrics.live_participants.set(len(live & federation.participants), labels)
        metrics.expected_participants.set(len(federation.participants), labels)

    async def on_submitted(self, event: UpdateSubmitted, tx: Tx) -> None:
        rejection = await self._admission_check(event, tx)
        if rejection is None and not await tx.repo.admit(event.federation_id, event.round, event.participant_id, event.update_id):
            rejection = Rejection(domain.RejectionReason.DUPLICATE, "an update from this participant was already admitted this round")
        if rejection is not None:
            tx.emit(
                UpdateRejected(
                    source=INGESTION, federation_id=event.federation_id, update_id=event.update_id,
                    participant_id=event.participant_id, round=event.round, reason=rejection.reason, detail=rejection.detail,
                )
            )
            return
        tx.emit(
            UpdateAccepted(
                source=INGESTION, federation_id=event.federation_id, update_id=event.update_id,
                participant_id=event.participant_id, round=event.round, update=event.update,
                num_examples=event.num_examples, train_loss=event.train_loss, privacy=event.privacy,
            )
        )

    async def _admission_check(self, event: UpdateSubmitted, tx: Tx) -> Rejection | None:
        check = self._checks.pop(event.update_id, None)
        federation = await self._federation(event.federation_id, tx)
        if event.federation_id not in self._batch_rounds:
            self._batch_rounds[event.federation_id] = await self._current_round(event.federation_id, tx)
        current = self._batch_rounds[event.federation_id]
        rejection = domain.check_envelope(event, federation, current, self.clock())
        if rejection is not None or federation is None:
            if check is not None:
                check.cancel()
            return rejection
        return await (check or self._verify(event, federation))

    async def _federation(self, federation_id: str, tx: Tx) -> FederationView | None:
        federation = self._federations.get(federation_id)
        if federation is None:
            federation = await tx.repo.federation(federation_id)
            if federation is not None:
                self._federations[federation_id] = federation
        return federation

    async def _current_round(self, federation_id: str, tx: Tx) -> RoundView | None:
        """Redis first (the hot path); PostgreSQL is the truth when the cache is cold or was flushed."""
        cached = await self.coordination.cached_round(federation_id)
        if cached is not None:
            return RoundView.from_cache(federation_id, cached)
        current = await tx.repo.current_round(federation_id)
        if current is not None:
            await self._cache(current)
        return current

    async def _cache(self, view: RoundView) -> None:
        # every change of a round passes here: forget the per-batch lookup too, so its correctness does not
        # depend on prefetch having run for the batch
        self._batch_rounds.pop(view.federation_id, None)
        await self.coordination.cache_round(view.federation_id, view.as_cache(), ttl_s=3600)
