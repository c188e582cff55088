"""Ingestion's thin handlers: keep admission state current, admit or reject each submission."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from fedstream.messaging.codec import MalformedMessage, Record
from fedstream.messaging.transaction import Transaction
from fedstream.storage.blobs import BlobError, BlobStore
from fedstream.storage.coordination import Coordination
from services.ingestion import domain, lanes
from services.ingestion.domain import FederationView, Rejection, RoundView
from services.ingestion.gate import ZeroTrustGate
from services.ingestion.liveness import Liveness
from services.ingestion.minimisation import extra_fields_rejection
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
        self, blobs: BlobStore, coordination: Coordination, clock: Callable[[], datetime] = utcnow, parallel_checks: int = 4,
        gate: ZeroTrustGate | None = None, park_ttl_s: float = 30.0,
    ) -> None:
        self.blobs, self.coordination, self.clock = blobs, coordination, clock
        self.gate = gate or ZeroTrustGate(coordination, clock)
        self.liveness = Liveness(coordination, self._federation, clock, self.gate.policy)
        self.park_ttl = timedelta(seconds=park_ttl_s)
        # A federation's admission facts never change once created, so each process keeps them.
        self._federations: dict[str, FederationView] = {}
        self._checks: dict[UUID, asyncio.Task[Rejection | None]] = {}
        self._batch_rounds: dict[str, RoundView | None] = {}
        self._check_slots = asyncio.Semaphore(parallel_checks)
        # (federation, round, participant) admissions this process saw committed: a participant's further
        # updates that round are duplicates without reading their tensors (the unique key still decides)
        self._admitted: set[tuple[str, int, str]] = set()

    async def prefetch(self, events: list[Event]) -> None:
        """Start verifying a batch's tensors concurrently (hashing and numpy release the GIL) while the
        handlers walk the batch; payloads are not kept, only each verdict."""
        self._batch_rounds = {}  # a round is looked up once per batch; every change of it passes through _cache
        # identity facts invalidate the gate's lookups when handled; the batch's submissions are judged together
        self.gate.new_batch([e for e in events if isinstance(e, UpdateSubmitted)])
        per_participant: set[tuple[str, str, int]] = set()
        for event in events:
            federation = self._federations.get(event.federation_id)
            if isinstance(event, UpdateSubmitted) and federation and event.update.size <= federation.max_update_bytes:
                # one update per participant and round can be admitted: verifying more of a batch ahead of
                # time would only let one participant's flood take the others' verification slots
                claim = (event.federation_id, event.participant_id, event.round)
                if event.update_id not in self._checks and claim not in per_participant:
                    per_participant.add(claim)
                    self._checks[event.update_id] = asyncio.create_task(self._verify(event, federation))

    async def _verify(self, event: UpdateSubmitted, federation: FederationView) -> Rejection | None:
        async with self._check_slots:
            try:
                payload = await self.blobs.get(event.update)
            except BlobError as exc:
                return domain.blob_failure(exc)
            return await asyncio.to_thread(domain.check_tensors, payload, federation.params, federation.he)

    def lane_of(self, record: Record) -> str | None:
        """The fair-consumption lane of a record (see services.ingestion.lanes)."""
        return lanes.lane_of(record, self._participants_of)

    def _participants_of(self, federation_id: str) -> frozenset[str] | None:
        federation = self._federations.get(federation_id)
        return None if federation is None else federation.participants

    def table(self) -> dict[type, Callable]:
        return {
            FederationCreated: self.on_federation_created,
            RoundOpened: self.on_round_opened,
            RoundAggregated: self.on_round_closed,
            RoundFailed: self.on_round_closed,
            FederationCompleted: self.on_federation_completed,
            UpdateSubmitted: self.on_submitted,
            ParticipantHeartbeat: self.liveness.on_heartbeat,
            **self.gate.table(),
        }

    async def on_federation_created(self, event: FederationCreated, tx: Tx) -> None:
        spec = event.spec
        view = FederationView(spec.federation_id, frozenset(spec.participant_ids), event.params, spec.limits.max_update_bytes,
                              he=(spec.he.scheme.value, spec.he.slots) if spec.encrypted else None)
        await tx.repo.save_federation(view)
        self._federations[view.federation_id] = view  # a fact from the event: safe to keep even if this tx retries

    async def on_round_opened(self, event: RoundOpened, tx: Tx) -> None:
        view = RoundView(event.federation_id, event.round, frozenset(event.participants), event.deadline, open=True)
        await tx.repo.open_round(view)
        await self._cache(view)
        # what arrived before this round opened is decided now (an earlier round's: refused as stale)
        for parked in await tx.repo.take_parked_up_to(event.federation_id, event.round):
            await self._decide(parked, tx)

    async def on_round_closed(self, event: RoundAggregated | RoundFailed, tx: Tx) -> None:
        self._admitted = {a for a in self._admitted if a[0] != event.federation_id or a[1] > event.round}
        await tx.repo.close_round(event.federation_id, event.round)
        current = await tx.repo.current_round(event.federation_id)
        if current is not None:
            await self._cache(current)

    async def on_federation_completed(self, event: FederationCompleted, tx: Tx) -> None:
        await tx.repo.close_federation(event.federation_id)
        current = await tx.repo.current_round(event.federation_id)
        if current is not None:
            await self._cache(current)
        for parked in await tx.repo.take_parked_up_to(event.federation_id, 2**31 - 1):  # no round opens any more
            await self._decide(parked, tx)

    async def on_submitted(self, event: UpdateSubmitted, tx: Tx) -> None:
        rejection = await self.gate.check(event, tx)
        if rejection is None and await self._not_open_yet(event, tx):
            # Its FederationCreated/RoundOpened (another topic) has not reached us yet: keep it until the
            # round opens (or refuse it after park_ttl), rather than refuse a punctual participant.
            await tx.repo.park(event, self.clock())
            self._drop_check(event)
            return
        await self._decide(event, tx, rejection)

    async def on_malformed(self, record: Record, error: MalformedMessage, tx: Tx) -> bool:
        """A submission with fields beyond the schema gets a rejection with its reason; the rest is dead-lettered."""
        rejection = extra_fields_rejection(record)
        if rejection is not None:
            tx.emit(rejection)
        return rejection is not None

    async def expire_parked(self, transactions) -> None:  # noqa: ANN001 - a Transactions[AdmissionRepository]
        """Timer: refuse what stayed parked past its TTL (its round never opened), forget old nonces."""
        async with transactions.begin() as tx:
            for parked in await tx.repo.take_parked_before(self.clock() - self.park_ttl):
                self._batch_rounds.pop(parked.federation_id, None)  # never trust a consumer batch's lookup here
                await self._decide(parked, tx)
            await self.gate.forget_old_nonces(tx)

    async def _not_open_yet(self, event: UpdateSubmitted, tx: Tx) -> bool:
        if await self._federation(event.federation_id, tx) is None:
            return True
        current = await self._batch_round(event.federation_id, tx)
        return current is None or event.round > current.round

    def _drop_check(self, event: UpdateSubmitted) -> None:
        check = self._checks.pop(event.update_id, None)
        if check is not None:
            check.cancel()

    async def _decide(self, event: UpdateSubmitted, tx: Tx, rejection: Rejection | None = None) -> None:
        """Accept or reject (with a reason) an update that passed, or failed, the zero-trust gate."""
        claim = (event.federation_id, event.round, event.participant_id)
        if rejection is None and claim in self._admitted:
            rejection = Rejection(domain.RejectionReason.DUPLICATE, "an update from this participant was already admitted this round")
        if rejection is None:
            rejection = await self._admission_check(event, tx)
        else:
            self._drop_check(event)
        if rejection is None and not await tx.repo.admit(event.federation_id, event.round, event.participant_id, event.update_id):
            rejection = Rejection(domain.RejectionReason.DUPLICATE, "an update from this participant was already admitted this round")
        if rejection is None:
            tx.after_commit(lambda: self._admitted.add(claim))
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
        current = await self._batch_round(event.federation_id, tx)
        rejection = domain.check_envelope(event, federation, current, self.clock())
        if rejection is not None or federation is None:
            if check is not None:
                check.cancel()
            return rejection
        return await (check or self._verify(event, federation))

    async def _batch_round(self, federation_id: str, tx: Tx) -> RoundView | None:
        if federation_id not in self._batch_rounds:
            self._batch_rounds[federation_id] = await self._current_round(federation_id, tx)
        return self._batch_rounds[federation_id]

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
