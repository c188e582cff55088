"""The zero-trust gate in front of admission: signature, key, freshness, replay, rate limit, consent, BAA.

Order matters: nothing the submission claims is believed before its signature checks out, so an
impostor can neither use up another participant's nonces nor drain its rate-limit bucket.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fedstream.messaging.transaction import Transaction
from fedstream.storage.coordination import Coordination
from services.ingestion import identity
from services.ingestion.domain import Rejection
from services.ingestion.identity import BaaView, ConsentView, IdentityPolicy, KeyView
from services.ingestion.ports import AdmissionRepository
from schemas.events import RejectionReason, UpdateSubmitted
from schemas.identity import BaaRegistered, ConsentRecorded, ParticipantEnrolled, ParticipantKeyRevoked

Tx = Transaction[AdmissionRepository]


class ZeroTrustGate:
    def __init__(self, coordination: Coordination, clock: Callable[[], datetime], policy: IdentityPolicy = IdentityPolicy()) -> None:
        self.coordination, self.clock, self.policy = coordination, clock, policy
        self.new_batch()

    def new_batch(self) -> None:
        """Forget identity lookups. Within one batch of submissions (one partition) no identity fact can
        intervene — those come on another topic, in other batches — so each key, consent list and BAA is
        read once per batch: a flood of one participant costs no database reads per message."""
        self._keys: dict[str, KeyView | None] = {}
        self._consents: dict[str, list[ConsentView]] = {}
        self._baas: dict[str, BaaView | None] = {}

    async def check(self, event: UpdateSubmitted, tx: Tx) -> Rejection | None:
        now = self.clock()
        key = await self._key(event.signature.key_id, tx) if event.signature is not None else None
        rejection = identity.check_signer(event, key, now, self.policy)
        if rejection is not None or key is None:
            return rejection
        sig = event.signature
        replayed = Rejection(RejectionReason.REPLAYED, f"nonce {sig.nonce} of key {key.key_id} was already used")
        # Redis answers repeats fast (and before the bucket, so replaying a participant's messages cannot
        # drain its bucket); PostgreSQL's unique key decides, so a flushed Redis reopens nothing. The
        # owner is the event id: a batch retried after a rollback is not its own replay.
        if not await self.coordination.claim_nonce(f"{sig.key_id}:{sig.nonce}", str(event.event_id), 2 * self.policy.freshness_s):
            return replayed
        if not await self.coordination.take_token(f"admission:{key.participant_id}", self.policy.bucket):
            # Refused, not delayed: holding it would hold up every other participant on the partition.
            return Rejection(
                RejectionReason.RATE_LIMITED,
                f"over {self.policy.bucket.rate_per_s:g} submissions/s (burst {self.policy.bucket.burst:g}); sign again and retry",
            )
        if not await tx.repo.use_nonce(sig.key_id, sig.nonce, event.event_id, sig.signed_at):
            return replayed
        return identity.check_permission(event, key, await self._consents_of(key, tx), await self._baa_of(key, tx), now)

    async def _key(self, key_id: str, tx: Tx) -> KeyView | None:
        if key_id not in self._keys:
            self._keys[key_id] = await tx.repo.key(key_id)
        return self._keys[key_id]

    async def _consents_of(self, key: KeyView, tx: Tx) -> list[ConsentView]:
        if key.participant_id not in self._consents:
            self._consents[key.participant_id] = await tx.repo.consents(key.participant_id)
        return self._consents[key.participant_id]

    async def _baa_of(self, key: KeyView, tx: Tx) -> BaaView | None:
        if key.organisation not in self._baas:
            self._baas[key.organisation] = await tx.repo.baa(key.organisation)
        return self._baas[key.organisation]

    async def forget_old_nonces(self, tx: Tx) -> None:
        await tx.repo.forget_nonces(self.clock() - 2 * self.policy.window)

    # --- the identity projection -----------------------------------------------------------------

    def table(self) -> dict[type, Callable]:
        return {
            ParticipantEnrolled: self.on_enrolled,
            ParticipantKeyRevoked: self.on_key_revoked,
            ConsentRecorded: self.on_consent,
            BaaRegistered: self.on_baa,
        }

    async def on_enrolled(self, event: ParticipantEnrolled, tx: Tx) -> None:
        self.new_batch()  # each identity fact also invalidates what this process looked up
        await tx.repo.save_key(KeyView(event.key_id, event.participant_id, event.organisation, event.public_key))

    async def on_key_revoked(self, event: ParticipantKeyRevoked, tx: Tx) -> None:
        self.new_batch()
        await tx.repo.revoke_key(event.key_id)

    async def on_consent(self, event: ConsentRecorded, tx: Tx) -> None:
        self.new_batch()
        await tx.repo.save_consent(ConsentView(event.participant_id, event.purpose, event.scope, event.expires_at, event.granted))

    async def on_baa(self, event: BaaRegistered, tx: Tx) -> None:
        self.new_batch()
        await tx.repo.save_baa(BaaView(event.organisation, event.expires_at, event.active))
