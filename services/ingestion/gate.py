"""The zero-trust gate in front of admission: signature, key, freshness, replay, rate limit, consent, BAA.

Order matters: nothing the submission claims is believed before its signature checks out, so an
impostor can neither use up another participant's nonces nor drain its rate-limit bucket.

Cost matters too, because a flood is refused here. The first check of a batch judges all its
submissions: one Redis round trip reads the senders' buckets, a submission whose sender has no token
left is refused without checking its signature (it would be refused either way), and the authentic
rest claim their nonces and tokens in one more round trip. Refusing a flood thus costs a key lookup
(cached per batch) and a rejection event per message, not a signature and two round trips each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from fedstream.messaging.transaction import Transaction
from fedstream.storage.coordination import Coordination
from services.ingestion import identity
from services.ingestion.domain import Rejection
from services.ingestion.identity import BaaView, ConsentView, IdentityPolicy, KeyView
from services.ingestion.ports import AdmissionRepository
from fedstream.storage.coordination import AdmissionAttempt, AttemptVerdict
from schemas.events import RejectionReason, UpdateSubmitted
from schemas.identity import BaaRegistered, ConsentRecorded, ParticipantEnrolled, ParticipantKeyRevoked

Tx = Transaction[AdmissionRepository]


class ZeroTrustGate:
    def __init__(self, coordination: Coordination, clock: Callable[[], datetime], policy: IdentityPolicy = IdentityPolicy()) -> None:
        self.coordination, self.clock, self.policy = coordination, clock, policy
        self.new_batch()

    def new_batch(self, submissions: Sequence[UpdateSubmitted] = ()) -> None:
        """A new batch: ``submissions`` are its submissions, judged together at its first check."""
        self._batch = list(submissions)
        self.forget_identities()

    def forget_identities(self) -> None:
        """Forget identity lookups and the verdicts taken with them. Identity facts call this when they are
        handled, so within a batch each key, consent list and BAA is read once: a flood costs no database
        reads per message."""
        self._keys: dict[str, KeyView | None] = {}
        self._consents: dict[str, list[ConsentView]] = {}
        self._baas: dict[str, BaaView | None] = {}
        self._verdicts: dict[UUID, tuple[KeyView | None, Rejection | None]] = {}

    async def check(self, event: UpdateSubmitted, tx: Tx) -> Rejection | None:
        if event.event_id not in self._verdicts:
            await self._check_ahead([event, *self._batch], tx)
        key, rejection = self._verdicts.pop(event.event_id)
        if rejection is not None or key is None:
            return rejection
        sig = event.signature
        # Redis answered repeats fast; PostgreSQL's unique key decides, so a flushed Redis reopens nothing.
        if not await tx.repo.use_nonce(sig.key_id, sig.nonce, event.event_id, sig.signed_at):
            return self._replayed(event, key)
        return identity.check_permission(event, key, await self._consents_of(key, tx), await self._baa_of(key, tx), self.clock())

    async def _check_ahead(self, submissions: list[UpdateSubmitted], tx: Tx) -> None:
        """Judge the batch's submissions not judged yet: the claim of each (cheap); the signature and
        freshness of those whose sender still has tokens; then the nonce claims and token takes of the
        authentic ones, in order, in one Redis round trip."""
        now, authentic, claims = self.clock(), [], []
        for event in submissions:
            if event.event_id not in self._verdicts:
                key = await self._key(event.signature.key_id, tx) if event.signature is not None else None
                self._verdicts[event.event_id] = (key, identity.check_claim(event, key))
                claims.append(event)
        self._batch = []
        tokens = await self._tokens_left({self._verdicts[e.event_id][0].participant_id for e in claims
                                          if self._verdicts[e.event_id][1] is None})
        for event in claims:
            key, rejection = self._verdicts[event.event_id]
            if rejection is not None:
                continue
            if tokens[key.participant_id] < 1:
                # The sender's bucket is empty, so this is refused whether or not it is authentic: skip
                # the signature (most of the cost of refusing a flood). No nonce or token is touched, so
                # a forgery refused here costs the participant nothing.
                self._verdicts[event.event_id] = (key, self._rate_limited("its signature was not checked"))
                continue
            rejection = identity.check_signature(event, key, now, self.policy)
            self._verdicts[event.event_id] = (key, rejection)
            if rejection is None:
                tokens[key.participant_id] -= 1  # only an authentic message can use up a token
                authentic.append((event, key))
        await self._claim(authentic)

    async def _tokens_left(self, participants: set[str]) -> dict[str, float]:
        ordered = sorted(participants)
        left = await self.coordination.tokens_left([self._bucket(p) for p in ordered], self.policy.bucket)
        return dict(zip(ordered, left, strict=True))

    async def _claim(self, authentic: list[tuple[UpdateSubmitted, KeyView]]) -> None:
        # The owner is the event id: a batch retried after a rollback is not its own replay. The nonce
        # comes before the bucket, so replaying a participant's messages cannot drain its bucket.
        verdicts = await self.coordination.admission_attempts([
            AdmissionAttempt(f"{e.signature.key_id}:{e.signature.nonce}", str(e.event_id), 2 * self.policy.freshness_s,
                             self._bucket(key.participant_id), self.policy.bucket)
            for e, key in authentic
        ])
        for (event, key), verdict in zip(authentic, verdicts, strict=True):
            if verdict is AttemptVerdict.REPLAYED:
                self._verdicts[event.event_id] = (key, self._replayed(event, key))
            elif verdict is AttemptVerdict.RATE_LIMITED:
                self._verdicts[event.event_id] = (key, self._rate_limited())

    @staticmethod
    def _bucket(participant_id: str) -> str:
        return f"admission:{participant_id}"

    def _rate_limited(self, note: str = "") -> Rejection:
        # Refused, not delayed: holding it would hold up everyone waiting behind it.
        bucket = self.policy.bucket
        return Rejection(
            RejectionReason.RATE_LIMITED,
            f"over {bucket.rate_per_s:g} submissions/s (burst {bucket.burst:g}); sign again and retry" + (f" ({note})" if note else ""),
        )

    @staticmethod
    def _replayed(event: UpdateSubmitted, key: KeyView) -> Rejection:
        return Rejection(RejectionReason.REPLAYED, f"nonce {event.signature.nonce} of key {key.key_id} was already used")

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
        self.forget_identities()  # each identity fact also invalidates what this process looked up
        await tx.repo.save_key(KeyView(event.key_id, event.participant_id, event.organisation, event.public_key))

    async def on_key_revoked(self, event: ParticipantKeyRevoked, tx: Tx) -> None:
        self.forget_identities()
        await tx.repo.revoke_key(event.key_id)

    async def on_consent(self, event: ConsentRecorded, tx: Tx) -> None:
        self.forget_identities()
        await tx.repo.save_consent(ConsentView(event.participant_id, event.purpose, event.scope, event.expires_at, event.granted))

    async def on_baa(self, event: BaaRegistered, tx: Tx) -> None:
        self.forget_identities()
        await tx.repo.save_baa(BaaView(event.organisation, event.expires_at, event.active))
