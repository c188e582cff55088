"""Thin async handlers of the key custodian: publish public contexts, vet and decrypt aggregates."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np

from fedstream.crypto import he
from fedstream.crypto.he_packing import total_size, unflatten
from fedstream.messaging.transaction import Transaction
from fedstream.storage import tensors
from fedstream.storage.blobs import BlobStore
from services.key_custody.domain import CustodyFederation, Refusal, expected_weights, vet
from services.key_custody.ports import CustodyRepository, HeldKeys, SecretKeyStore
from schemas.base import derived_id
from schemas.custody import (
    AggregateDecrypted,
    DecryptionRefused,
    EncryptedAggregateReady,
    HeContextPublished,
    RefusalReason,
)
from schemas.events import FederationCreated, RoundAggregated
from schemas.he import HeScheme, HeSpec
from schemas.topics import KEY_CUSTODY

Tx = Transaction[CustodyRepository]
log = logging.getLogger(__name__)


def create_keys(spec: HeSpec) -> HeldKeys:
    """Fresh keys for a federation (also what ``fedstream keys init`` stores ahead of time)."""
    fc, public = he.make_context(spec)
    return HeldKeys(fc.fingerprint, he.secret_bytes(fc), public)


class CustodyHandlers:
    def __init__(self, blobs: BlobStore, keys: SecretKeyStore) -> None:
        self.blobs, self.keys = blobs, keys
        self._secret: dict[str, he.FederationContext] = {}
        self._public_contexts: dict[str, he.FederationContext] = {}

    def table(self) -> dict[type, Callable]:
        return {FederationCreated: self.on_federation_created, EncryptedAggregateReady: self.on_aggregate_ready}

    async def on_federation_created(self, event: FederationCreated, tx: Tx) -> None:
        spec = event.spec
        if not spec.encrypted:
            return
        held = await asyncio.to_thread(self._load_or_create, event.federation_id, spec.he)
        public_ref = await self.blobs.put(held.public_context, he.MEDIA_TYPE + "+context")
        await tx.repo.save_federation(
            CustodyFederation(event.federation_id, held.fingerprint, spec.training.quorum, event.params, spec.he)
        )
        tx.emit(
            HeContextPublished(
                event_id=derived_id(event.federation_id, "he-context"), source=KEY_CUSTODY,
                federation_id=event.federation_id, scheme=spec.he.scheme, fingerprint=held.fingerprint,
                public_context=public_ref, params=spec.he,
            )
        )

    def _load_or_create(self, federation_id: str, spec: HeSpec) -> HeldKeys:
        return self.keys.load(federation_id) or self.keys.create(federation_id, create_keys(spec))

    async def on_aggregate_ready(self, event: EncryptedAggregateReady, tx: Tx) -> None:
        federation = await tx.repo.federation(event.federation_id)
        refusal = vet(event, federation, await tx.repo.decrypted(event.federation_id, event.round))
        if refusal is None:
            assert federation is not None
            refusal = await self._check_sum(event, federation)
        if refusal is not None:
            return self._refuse(event, refusal, tx)
        assert federation is not None
        log.info("decrypting round %d of %s: %d contributors (quorum %d), ciphertext %s", event.round,
                 event.federation_id, len(event.contributions), federation.quorum, event.aggregate.sha256[:12])
        model = await self._decrypt(event, federation)
        ref = await self.blobs.put(tensors.to_bytes(model))
        await tx.repo.record_decryption(event.federation_id, event.round, event.aggregate.sha256, ref.sha256,
                                        len(event.contributions))
        tx.emit(
            AggregateDecrypted(
                event_id=derived_id(event.federation_id, event.round, "decrypted"), source=KEY_CUSTODY,
                federation_id=event.federation_id, round=event.round, ciphertext_sha256=event.aggregate.sha256,
                model_sha256=ref.sha256, contributors=len(event.contributions), quorum=federation.quorum,
            )
        )
        tx.emit(
            RoundAggregated(
                event_id=derived_id(event.federation_id, event.round, "aggregated"), source=KEY_CUSTODY,
                federation_id=event.federation_id, round=event.round, aggregate=ref,
                contributions=event.contributions, closed_by=event.closed_by,
            )
        )

    async def _check_sum(self, event: EncryptedAggregateReady, federation: CustodyFederation) -> Refusal | None:
        """Recompute Σ weightₖ·ciphertextₖ from the listed updates: SEAL's modular arithmetic is exact,
        so a genuine aggregate is byte-identical, and anything else (one update passed off as a sum,
        other weights, a foreign ciphertext) is refused rather than decrypted."""
        length = total_size(federation.params)
        weights = expected_weights(federation.he.scheme, [c.num_examples for c in event.contributions])
        try:
            fc = await self._public(event.federation_id)
            offered = await self.blobs.get(event.aggregate)
            he.check(offered, fc, length)
            updates = [await self.blobs.get(ref) for ref in event.updates]
            expected = await asyncio.to_thread(he.weighted_sum, fc, updates, weights, length)
        except he.CiphertextError as exc:
            return Refusal(_refusal_reason(exc), str(exc))
        if expected != offered:
            return Refusal(RefusalReason.NOT_THE_SUM, "the ciphertext is not the weighted sum of the listed updates")
        return None

    async def _public(self, federation_id: str) -> he.FederationContext:
        if federation_id not in self._public_contexts:
            held = await asyncio.to_thread(self.keys.load, federation_id)
            if held is None:
                raise he.ForeignContext("no keys are held for this federation")
            self._public_contexts[federation_id] = await asyncio.to_thread(he.load_public_context, held.public_context)
        return self._public_contexts[federation_id]

    async def _decrypt(self, event: EncryptedAggregateReady, federation: CustodyFederation) -> dict[str, np.ndarray]:
        secret = await self._secret_context(event.federation_id)
        data = await self.blobs.get(event.aggregate)
        length = total_size(federation.params)
        values = await asyncio.to_thread(he.decrypt, secret, data, length)
        if federation.he.scheme is HeScheme.BFV:  # Σ nₖ·qₖ exactly: divide by N, then undo the quantisation
            values = he.dequantise(values, federation.he.quantisation_bits) / event.total_weight
        return unflatten(np.asarray(values, np.float64), federation.params)

    async def _secret_context(self, federation_id: str) -> he.FederationContext:
        if federation_id not in self._secret:
            held = await asyncio.to_thread(self.keys.load, federation_id)
            if held is None:
                raise LookupError(f"no keys are held for {federation_id}")
            self._secret[federation_id] = await asyncio.to_thread(he.load_secret_context, held.secret_context, held.fingerprint)
        return self._secret[federation_id]

    def _refuse(self, event: EncryptedAggregateReady, refusal: Refusal, tx: Tx) -> None:
        log.warning("refused to decrypt round %d of %s (%s): %s", event.round, event.federation_id,
                    refusal.reason.value, refusal.detail)
        tx.emit(
            DecryptionRefused(
                event_id=derived_id(event.federation_id, event.round, "refused", event.event_id), source=KEY_CUSTODY,
                federation_id=event.federation_id, round=event.round, ciphertext_sha256=event.aggregate.sha256,
                reason=refusal.reason, detail=refusal.detail,
            )
        )


def _refusal_reason(exc: he.CiphertextError) -> RefusalReason:
    return RefusalReason.WRONG_CONTEXT if isinstance(exc, he.ForeignContext) else RefusalReason.MALFORMED_CIPHERTEXT
