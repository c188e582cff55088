"""Registry decisions: create federations, release validated models, open the next round or complete.

Every consumed event is also projected into the read views (``RegistryRepository.project``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from fedstream.messaging.transaction import Transaction
from fedstream.observability import metrics
from fedstream.storage import tensors
from fedstream.storage.blobs import BlobStore
from services.registry import domain
from services.registry.domain import Complete, FederationState, OpenNext
from services.registry.ports import RegistryRepository
from schemas.base import Event, ParamSpec, derived_id, utcnow
from schemas.events import (
    BudgetExhausted,
    CreateFederation,
    FederationCompleted,
    FederationCreated,
    ModelRejected,
    ModelReleased,
    ModelValidated,
    RoundFailed,
    RoundOpened,
)
from schemas.compliance import ParticipantErased
from schemas.topics import REGISTRY
from services.registry.projections import PROJECTIONS
from services.registry.identity import IdentityHandlers, postgres_store

Tx = Transaction[RegistryRepository]
InitialWeights = Callable[[object], dict]


class RegistryHandlers:
    def __init__(
        self, blobs: BlobStore, initial_weights: InitialWeights, clock: Callable[[], datetime] = utcnow,
        identity: IdentityHandlers | None = None,
    ) -> None:
        self.blobs, self.initial_weights, self.clock = blobs, initial_weights, clock
        self.identity = identity or IdentityHandlers(postgres_store)  # enrolment, keys, consent, BAAs

    def table(self) -> dict[type, Callable]:
        decisions: dict[type, Callable] = {
            BudgetExhausted: self.on_budget_exhausted,
            ParticipantErased: self.on_participant_erased,
            CreateFederation: self.on_create,
            ModelValidated: self.on_validated,
            ModelRejected: self.on_round_without_release,
            RoundFailed: self.on_round_without_release,
        }
        return {t: self._with_projection(decisions.get(t)) for t in {*decisions, *PROJECTIONS}} | self.identity.table()

    @staticmethod
    def _with_projection(decide: Callable | None) -> Callable:
        async def handle(event: Event, tx: Tx) -> None:
            if decide is not None:
                await decide(event, tx)
            await tx.repo.project(event)

        return handle

    async def on_create(self, command: CreateFederation, tx: Tx) -> None:
        spec = command.spec
        if await tx.repo.lock(spec.federation_id) is not None:
            return  # the federation exists: creating it again changes nothing
        weights = self.initial_weights(spec.model)
        ref = await self.blobs.put(tensors.to_bytes(weights))
        params: tuple[ParamSpec, ...] = tensors.specs_of(weights)
        state = FederationState(spec.federation_id, spec, current_round=1, latest_version=0, latest_model=ref, completed=False)
        await tx.repo.create(state)
        tx.emit(
            FederationCreated(
                event_id=derived_id(spec.federation_id, "created"), source=REGISTRY, federation_id=spec.federation_id,
                spec=spec, params=params, initial_model=ref,
            )
        )
        self._open_round(state, tx)

    async def on_validated(self, event: ModelValidated, tx: Tx) -> None:
        state = await tx.repo.lock(event.federation_id)
        if not domain.is_current(state, event.round):
            return
        version = state.latest_version + 1
        tx.emit(
            ModelReleased(
                event_id=derived_id(event.federation_id, event.round, "released"), source=REGISTRY,
                federation_id=event.federation_id, round=event.round, model_version=version, model=event.candidate,
                metrics=event.metrics, contributions=event.contributions,
            )
        )
        opened_at = await tx.repo.round_opened_at(event.federation_id, event.round)
        if opened_at is not None:
            seconds = (self.clock() - opened_at).total_seconds()
            tx.after_commit(lambda: metrics.round_duration.record(seconds, {"federation": event.federation_id}))
        state = replace(state, latest_version=version, latest_model=event.candidate)
        await self._next(state, tx, converged=event.converged, target_reached=event.target_reached)

    async def on_budget_exhausted(self, event: BudgetExhausted, tx: Tx) -> None:
        """The participant is told why (the event itself) and is not selected for later rounds."""
        state = await tx.repo.lock(event.federation_id)
        if state is not None and event.participant_id not in state.excluded:
            await tx.repo.save(replace(state, excluded=state.excluded | {event.participant_id}))

    async def on_participant_erased(self, event: ParticipantErased, tx: Tx) -> None:
        """An erased participant is never selected again. Compliance already put its pseudonym where its id
        was (the spec included), so excluding the pseudonym takes it out of every later round."""
        state = await tx.repo.lock(event.federation_id)
        if state is not None and event.pseudonym not in state.excluded:
            await tx.repo.save(replace(state, excluded=state.excluded | {event.pseudonym}))

    async def on_round_without_release(self, event: ModelRejected | RoundFailed, tx: Tx) -> None:
        state = await tx.repo.lock(event.federation_id)
        if not domain.is_current(state, event.round):
            return
        await self._next(state, tx)  # the next round starts again from the latest released model

    async def _next(self, state: FederationState, tx: Tx, converged: bool = False, target_reached: bool = False) -> None:
        step = domain.after_round(state, converged, target_reached)
        if isinstance(step, OpenNext):
            state = replace(state, current_round=step.round)
            self._open_round(state, tx)
        elif isinstance(step, Complete):
            state = replace(state, completed=True)
            tx.emit(
                FederationCompleted(
                    event_id=derived_id(state.federation_id, "completed"), source=REGISTRY,
                    federation_id=state.federation_id, reason=step.reason, rounds=state.current_round,
                    final_model_version=state.latest_version,
                )
            )
        await tx.repo.save(state)

    def _open_round(self, state: FederationState, tx: Tx) -> None:
        training = state.spec.training
        tx.emit(
            RoundOpened(
                event_id=derived_id(state.federation_id, state.current_round, "opened"), source=REGISTRY,
                federation_id=state.federation_id, round=state.current_round, model_version=state.latest_version,
                global_model=state.latest_model, participants=state.selectable, quorum=training.quorum,
                deadline=self.clock() + timedelta(seconds=training.round_deadline_s), local_epochs=training.local_epochs,
                learning_rate=training.learning_rate, batch_size=training.batch_size,
            )
        )
