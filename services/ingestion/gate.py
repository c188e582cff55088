"""The zero-trust gate in front of admission: signature, key, freshness, replay, rate limit, consent, BAA.

Order matters: nothing the submission claims is believed before its signature checks out, so an
impostor can neither use up another participant's nonces nor drain its rate-limit bucket.

Cost matters too: a flood is refused here, and honest submissions wait behind whatever is judged with
them. The first check of a batch judges all its submissions together, each step in one round trip:
their keys; their senders' token buckets (a submission whose sender has no token left is refused
without checking its signature: it would be refused either way); the Redis nonce claims and token takes
of the authentic ones; their durable PostgreSQL nonce claims; the consents and BAAs they need. A batch
costs five round trips whatever its size, instead of several per submission.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from fedstream.messaging.transaction import Transaction
from fedstream.security.message_auth import NonceClaim
from fedstream.storage.coordination import AdmissionAttempt, AttemptVerdict, Coordination
from services.ingestion import identity
from services.ingestion.domain import Rejection
from services.ingestion.identity import BaaView, ConsentView, IdentityPolicy, KeyView
from services.ingestion.ports import AdmissionRepository
from schemas.events import RejectionReason, UpdateSubmitted
from schemas.identity import BaaRegistered, ConsentRecorded, ParticipantEnrolled, ParticipantKeyRevoked

Tx = Transaction[AdmissionRepository]
Verdict = tuple[KeyView | None, Rejection | None]


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
        handled (what is judged after them is judged again, with them)."""
        self._keys: dict[str, KeyView | None] = {}
        self._consents: dict[str, list[ConsentView]] = {}
        self._baas: dict[str, BaaView | None] = {}
        self._verdicts: dict[UUID, Verdict] = {}
        self._judged_in: Tx | None = None  # verdicts hold for the transaction that took them (its nonce rows)

    async def check(self, event: UpdateSubmitted, tx: Tx) -> Rejection | None:
        if self._judged_in is not tx or event.event_id not in self._verdicts:
            await self._check_ahead([event, *self._batch], tx)
        key, rejection = self._verdicts.pop(event.event_id)
        if rejection is not None or key is None:
            return rejection
        consents, baa = self._consents[key.participant_id], self._baas[key.organisation]
        return identity.check_permission(event, key, consents, baa, self.clock())

    async def _check_ahead(self, submissions: list[UpdateSubmitted], tx: Tx) -> None:
        """Judge the batch's submissions not judged yet in this transaction (see the module docstring)."""
        if self._judged_in is not tx:
            self._judged_in, self._verdicts = tx, {}
        pending = [e for e in {e.event_id: e for e in submissions}.values() if e.event_id not in self._verdicts]
        self._batch = []
        await self._load_keys({e.signature.key_id for e in pending if e.signature is not None}, tx)
        for event in pending:
            key = self._keys.get(event.signature.key_id) if event.signature is not None else None
            self._verdicts[event.event_id] = (key, identity.check_claim(event, key))
        authentic = await self._authentic([e for e in pending if self._verdicts[e.event_id][1] is None])
        await self._claim(authentic)
        fresh = [(e, k) for e, k in authentic if self._verdicts[e.event_id][1] is None]
        # Redis answered repeats fast; PostgreSQL's unique key decides, so a flushed Redis reopens nothing.
        held = await tx.repo.use_nonces([
            NonceClaim(e.signature.key_id, e.signature.nonce, e.event_id, e.signature.signed_at) for e, _ in fresh
        ])
        for event, key in fresh:
            if event.event_id not in held:
                self._verdicts[event.event_id] = (key, self._replayed(event, key))
        await self._load_permissions([k for e, k in fresh if e.event_id in held], tx)

    async def _authentic(self, claimed: list[UpdateSubmitted]) -> list[tuple[UpdateSubmitted, KeyView]]:
        """Signature and freshness of the claims whose sender still has tokens; those that pass, in order."""
        tokens = await self._tokens_left({self._verdicts[e.event_id][0].participant_id for e in claimed})
        now, authentic = self.clock(), []
        for event in claimed:
            key = self._verdicts[event.event_id][0]
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
        return authentic

    async def _load_keys(self, key_ids: set[str], tx: Tx) -> None:
        missing = key_ids - self._keys.keys()
        if missing:
            found = await tx.repo.keys(missing)
            self._keys.update({k: found.get(k) for k in missing})

    async def _load_permissions(self, keys: list[KeyView], tx: Tx) -> None:
        participants = {k.participant_id for k in keys} - self._consents.keys()
        organisations = {k.organisation for k in keys} - self._baas.keys()
        if participants:
            consents = await tx.repo.consents_of(participants)
            self._consents.update({p: consents.get(p, []) for p in participants})
        if organisations:
            baas = await tx.repo.baas(organisations)
            self._baas.update({o: baas.get(o) for o in organisations})

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
