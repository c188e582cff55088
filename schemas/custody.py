"""Encrypted aggregation (``crypto: he``): the key custodian's facts and the aggregator's request.

Flow: on ``FederationCreated`` the custodian publishes the federation's public context
(``HeContextPublished``); participants encrypt under it, the aggregator sums ciphertexts and asks for
decryption with ``EncryptedAggregateReady``; the custodian checks the request (closed round, quorum,
distinct contributors, the ciphertext really is their weighted sum) and either decrypts it — writing
the plaintext model and emitting the ordinary ``RoundAggregated`` — or refuses. Every decryption and
every refusal is an event, so the audit trail has them all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.base import BlobRef, Event, RoundNumber, Sha256Hex
from schemas.events import Contribution
from schemas.he import HeScheme, HeSpec

Detail = Annotated[str, StringConstraints(max_length=2000)]


class HeContextPublished(Event):
    """The public context (no secret key) every participant encrypts under and the aggregator sums under."""

    TYPE: ClassVar[str] = "io.fedstream.he.context_published.v1"
    scheme: HeScheme
    fingerprint: Sha256Hex  # SHA-256 of the public context's bytes; every ciphertext names it
    public_context: BlobRef
    params: HeSpec


class EncryptedAggregateReady(Event):
    """The aggregator's request: Σ weightₖ·ciphertextₖ over a closed round's counted updates.

    CKKS weights are nₖ/N (the sum is the average); BFV weights are the integers nₖ (the custodian
    divides the exact sum by N)."""

    TYPE: ClassVar[str] = "io.fedstream.he.aggregate_ready.v1"
    round: RoundNumber
    aggregate: BlobRef
    fingerprint: Sha256Hex
    contributions: tuple[Contribution, ...] = Field(min_length=1)
    updates: tuple[BlobRef, ...]  # each contribution's ciphertext, in the same order: the custodian re-sums them
    total_weight: int = Field(ge=1)  # N = Σ nₖ
    weighting: Literal["fraction", "integer"]
    closed_by: Literal["all_submitted", "deadline"]

    @model_validator(mode="after")
    def _one_blob_per_contribution(self) -> "EncryptedAggregateReady":
        if [u.sha256 for u in self.updates] != [c.sha256 for c in self.contributions]:
            raise ValueError("updates must list each contribution's ciphertext blob, in order")
        return self


class AggregateDecrypted(Event):
    """The custodian decrypted a round's aggregate (and published the model as ``RoundAggregated``)."""

    TYPE: ClassVar[str] = "io.fedstream.he.aggregate_decrypted.v1"
    round: RoundNumber
    ciphertext_sha256: Sha256Hex
    model_sha256: Sha256Hex
    contributors: int = Field(ge=1)
    quorum: int = Field(ge=1)


class RefusalReason(StrEnum):
    """Why the custodian would not decrypt (dashboards and auditors key on these)."""

    NOT_ENCRYPTED = "not_encrypted"  # not an HE federation, or its keys are not the custodian's
    BELOW_QUORUM = "below_quorum"  # fewer contributors than the round's quorum: too close to an individual update
    DUPLICATE_CONTRIBUTOR = "duplicate_contributor"
    ALREADY_DECRYPTED = "already_decrypted"  # one decryption per round
    NOT_THE_SUM = "not_the_sum"  # the ciphertext is not the weighted sum of the listed updates
    WRONG_CONTEXT = "wrong_context"
    MALFORMED_CIPHERTEXT = "malformed_ciphertext"


class DecryptionRefused(Event):
    TYPE: ClassVar[str] = "io.fedstream.he.decryption_refused.v1"
    round: RoundNumber
    ciphertext_sha256: Sha256Hex
    reason: RefusalReason
    detail: Detail


FACTS: tuple[type[Event], ...] = (HeContextPublished, AggregateDecrypted, DecryptionRefused)
REQUESTS: tuple[type[Event], ...] = (EncryptedAggregateReady,)
