"""Thin async handlers: load the round, ask the domain, store, emit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from fedstream.crypto import he
from fedstream.crypto.he_packing import total_size
from fedstream.crypto.he_parallel import InProcessSummer, SumRequest
from fedstream.messaging.transaction import Transaction
from fedstream.storage import tensors
from fedstream.storage.blobs import BlobStore
from services.aggregation import domain
from fedstream.privacy.adaptive_clipping import QuantileClipping, next_clip_norm
from fedstream.privacy.central import NoiseSource, SystemNoise, dp_fedavg
from services.aggregation.domain import CentralPolicy, HeFederation, RoundState, RoundStatus
from services.aggregation.partials import PartialAggregates
from services.aggregation.ports import AggregationRepository, StoredContribution
from schemas.base import derived_id, utcnow
from schemas.custody import EncryptedAggregateReady, HeContextPublished
from schemas.he import HeScheme
from schemas.events import (
    CentralDpApplied,
    Contribution,
    FederationCreated,
    PrivacyCharged,
    RejectionReason,
    RoundAggregated,
    RoundFailed,
    RoundOpened,
    UpdateRejected,
)
from schemas.topics import AGGREGATION

Tx = Transaction[AggregationRepository]


class AggregationHandlers:
    def __init__(self, blobs: BlobStore, clock: Callable[[], datetime] = utcnow, noise: NoiseSource | None = None,
                 summer=None) -> None:  # noqa: ANN001 - a he_parallel summer (ProcessPoolSummer in production)
        self.blobs, self.clock = blobs, clock
        self.noise = noise or SystemNoise()
        self.partials = PartialAggregates(blobs)
        self.summer = summer or InProcessSummer(blobs)
        self._plaintext: set[str] = set()  # federations known not to be encrypted (an immutable fact)

    def table(self) -> dict[type, Callable]:
        return {FederationCreated: self.on_federation_created, RoundOpened: self.on_round_opened, PrivacyCharged: self.on_charged,
                HeContextPublished: self.on_he_context}

    async def on_federation_created(self, event: FederationCreated, tx: Tx) -> None:
        policy = CentralPolicy.of(event.spec)
        if policy is not None:
            await tx.repo.save_policy(event.federation_id, policy)
        if event.spec.encrypted:
            await tx.repo.save_he_federation(event.federation_id, event.spec.he.scheme.value, total_size(event.params), event.spec.he.slots)

    async def on_he_context(self, event: HeContextPublished, tx: Tx) -> None:
        await tx.repo.set_he_context(event.federation_id, event.fingerprint, event.public_context)

    async def _encryption(self, federation_id: str, tx: Tx) -> HeFederation | None:
        if federation_id in self._plaintext:
            return None
        found = await tx.repo.he_federation(federation_id)
        if found is None:
            self._plaintext.add(federation_id)
        return found

    async def on_round_opened(self, event: RoundOpened, tx: Tx) -> None:
        await tx.repo.open_round(
            RoundState(event.federation_id, event.round, event.quorum, event.deadline, event.participants,
                       RoundStatus.COLLECTING, base_model=event.global_model)
        )
        for parked in await tx.repo.take_parked(event.federation_id, event.round):
            await self._count(event.federation_id, event.round, parked, tx)

    async def on_charged(self, event: PrivacyCharged, tx: Tx) -> None:
        contribution = StoredContribution(
            update_id=event.update_id, participant_id=event.participant_id, num_examples=event.num_examples,
            sha256=event.update.sha256, blob=event.update,
        )
        await self._count(event.federation_id, event.round, contribution, tx)

    async def _count(self, federation_id: str, round_number: int, contribution: StoredContribution, tx: Tx) -> None:
        state = await tx.repo.lock_round(federation_id, round_number)
        if state is None:
            # Its RoundOpened (another topic) has not reached us yet: ingestion only admits updates for open
            # rounds, so keep it and count it when the round opens, rather than refuse it.
            await tx.repo.park(federation_id, round_number, contribution)
            return
        refusal = domain.admit(state, contribution.participant_id)
        encryption = await self._encryption(federation_id, tx)
        detail = ""
        if refusal is None and encryption is not None:
            refusal, detail = await self._check_ciphertext(encryption, contribution)
        if refusal is None:
            if await tx.repo.add_contribution(federation_id, round_number, contribution):
                if encryption is None:  # ciphertexts are summed at close, across processes
                    key = (federation_id, round_number)
                    tx.after_commit(lambda: self.partials.fold_later(key, contribution))
                await self._step(replace(state, received=state.received + 1), tx)
                return
            refusal = RejectionReason.DUPLICATE
        tx.emit(
            UpdateRejected(
                source=AGGREGATION, federation_id=federation_id, update_id=contribution.update_id,
                participant_id=contribution.participant_id, round=round_number, reason=refusal,
                detail=detail or f"aggregation did not count this update: {refusal.value}",
            )
        )

    async def _check_ciphertext(self, encryption: HeFederation, c: StoredContribution) -> tuple[RejectionReason | None, str]:
        """Frame, context fingerprint and size of an encrypted update, before it may count.

        Before the custodian's public context has reached this aggregator the fingerprint is not known
        yet; the frame and size are still checked, and the sum at close checks the fingerprint."""
        try:
            he.check_header(await self.blobs.get(c.blob), encryption.fingerprint, HeScheme(encryption.scheme),
                            encryption.slots, encryption.length)
        except he.CiphertextError as exc:
            return RejectionReason(exc.reason), f"not counted: {exc}"
        return None, ""

    async def advance(self, federation_id: str, round_number: int, tx: Tx) -> None:
        """Close, aggregate or fail the round if its state calls for it."""
        state = await tx.repo.lock_round(federation_id, round_number)
        if state is not None:
            await self._step(state, tx)

    async def _step(self, state: RoundState, tx: Tx) -> None:
        federation_id, round_number = state.federation_id, state.round
        step = domain.next_step(state, self.clock())
        if isinstance(step, domain.Close):
            await self._aggregate(state, step, tx)
        elif isinstance(step, domain.Fail):
            self.partials.forget((federation_id, round_number))
            await tx.repo.set_status(federation_id, round_number, RoundStatus.FAILED, None, self.clock())
            tx.emit(
                RoundFailed(
                    event_id=derived_id(federation_id, round_number, "failed"), source=AGGREGATION,
                    federation_id=federation_id, round=round_number, reason="quorum_not_met",
                    received=step.received, quorum=state.quorum,
                )
            )

    async def _aggregate(self, state: RoundState, step: domain.Close, tx: Tx) -> None:
        counted = await tx.repo.contributions(state.federation_id, state.round)
        encryption = await self._encryption(state.federation_id, tx)
        if encryption is not None:
            return await self._encrypted_aggregate(state, step, counted, encryption, tx)
        policy = await tx.repo.policy(state.federation_id)
        central: CentralDpApplied | None = None
        if policy is None:
            average = await self.partials.complete((state.federation_id, state.round), counted)
        else:
            self.partials.forget((state.federation_id, state.round))  # DP-FedAvg clips per update: no running mean
            average, central = await self._central_dp(state, counted, policy, tx)
        ref = await self.blobs.put(tensors.to_bytes(average))
        await tx.repo.set_status(state.federation_id, state.round, RoundStatus.AGGREGATED, step.closed_by, self.clock())
        tx.emit(
            RoundAggregated(
                event_id=derived_id(state.federation_id, state.round, "aggregated"), source=AGGREGATION,
                federation_id=state.federation_id, round=state.round, aggregate=ref, closed_by=step.closed_by,
                contributions=tuple(Contribution(**c.model_dump(exclude={"blob"})) for c in counted),
                central_dp=central,
            )
        )

    async def _encrypted_aggregate(
        self, state: RoundState, step: domain.Close, counted: list[StoredContribution], encryption: HeFederation, tx: Tx
    ) -> None:
        """Σ weightₖ·ciphertextₖ under the public context, handed to the key custodian to decrypt."""
        if encryption.public_context is None:
            raise LookupError(f"{state.federation_id}: the custodian's public context has not arrived yet")
        weights, weighting = encryption.weights([c.num_examples for c in counted])
        request = SumRequest(encryption.public_context, encryption.length, tuple((c.blob, w) for c, w in zip(counted, weights)))
        ref = await self.blobs.put(await self.summer.weighted_sum(request), he.MEDIA_TYPE)
        await tx.repo.set_status(state.federation_id, state.round, RoundStatus.AGGREGATED, step.closed_by, self.clock())
        tx.emit(
            EncryptedAggregateReady(
                event_id=derived_id(state.federation_id, state.round, "encrypted-aggregate"), source=AGGREGATION,
                federation_id=state.federation_id, round=state.round, aggregate=ref, fingerprint=encryption.public_context.sha256,
                contributions=tuple(Contribution(**c.model_dump(exclude={"blob"})) for c in counted),
                updates=tuple(c.blob for c in counted),
                total_weight=sum(c.num_examples for c in counted), weighting=weighting, closed_by=step.closed_by,
            )
        )

    async def _central_dp(
        self, state: RoundState, counted: list[StoredContribution], policy: CentralPolicy, tx: Tx
    ) -> tuple[dict, CentralDpApplied]:
        """DP-FedAvg (McMahan et al. 2018): clip each delta to S, Gaussian noise σS on the sum, noise from
        the operating system's CSPRNG; adaptive clipping (Andrew et al. 2021) then moves S."""
        if state.base_model is None:
            raise LookupError(f"round {state.round} of {state.federation_id} has no base model recorded")
        base = tensors.from_bytes(await self.blobs.get(state.base_model))
        updates = [tensors.from_bytes(await self.blobs.get(c.blob)) for c in counted]
        new_weights, applied = dp_fedavg(base, updates, policy.clip_norm, policy.noise_multiplier, self.noise)
        next_clip = policy.clip_norm
        if policy.adaptive:
            quantile = QuantileClipping(policy.clip_norm, policy.target_quantile, policy.clipping_learning_rate)
            next_clip = next_clip_norm(quantile, applied.norms, self.noise).clip_norm
            await tx.repo.set_clip_norm(state.federation_id, next_clip)
        return new_weights, CentralDpApplied(
            noise_multiplier=policy.noise_multiplier, clip_norm=policy.clip_norm, noise_stddev=applied.noise_stddev,
            fraction_clipped=applied.fraction_clipped, next_clip_norm=next_clip,
        )

    async def close_due_rounds(self, transactions) -> None:  # noqa: ANN001 - a Transactions[AggregationRepository]
        """Timer: rounds whose deadline passed are closed on quorum or failed."""
        async with transactions.begin() as tx:
            for federation_id, round_number in await tx.repo.due_rounds(self.clock()):
                await self.advance(federation_id, round_number, tx)

