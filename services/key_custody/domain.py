"""The custodian's decision, as a pure function: may this ciphertext be decrypted?"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.base import ParamSpec
from schemas.custody import EncryptedAggregateReady, RefusalReason
from schemas.he import HeScheme, HeSpec


@dataclass(frozen=True)
class CustodyFederation:
    """What the custodian recorded when it made (or found) a federation's keys."""

    federation_id: str
    fingerprint: str
    quorum: int
    params: tuple[ParamSpec, ...]
    he: HeSpec


@dataclass(frozen=True)
class Refusal:
    reason: RefusalReason
    detail: str


def expected_weights(scheme: HeScheme, num_examples: list[int]) -> list[float | int]:
    """The FedAvg weights the aggregator must have used (nₖ/N for CKKS, nₖ for BFV)."""
    total = sum(num_examples)
    return [n / total for n in num_examples] if scheme is HeScheme.CKKS else list(num_examples)


def vet(request: EncryptedAggregateReady, federation: CustodyFederation | None, already_decrypted: bool) -> Refusal | None:
    """Everything that can be checked without touching a ciphertext. The sum itself is checked after."""
    if federation is None:
        return Refusal(RefusalReason.NOT_ENCRYPTED, "no keys are held for this federation")
    if request.fingerprint != federation.fingerprint:
        return Refusal(RefusalReason.WRONG_CONTEXT, "the aggregate names another context than this federation's keys")
    if already_decrypted:
        return Refusal(RefusalReason.ALREADY_DECRYPTED, f"round {request.round} was already decrypted once")
    participants = [c.participant_id for c in request.contributions]
    updates = [c.update_id for c in request.contributions]
    if len(set(participants)) != len(participants) or len(set(updates)) != len(updates):
        return Refusal(RefusalReason.DUPLICATE_CONTRIBUTOR, "a participant or update appears twice in the aggregate")
    if len(participants) < federation.quorum:
        return Refusal(
            RefusalReason.BELOW_QUORUM,
            f"{len(participants)} contributor(s), the quorum is {federation.quorum}: too close to an individual update",
        )
    if request.total_weight != sum(c.num_examples for c in request.contributions):
        return Refusal(RefusalReason.NOT_THE_SUM, "total_weight is not the sum of the contributions' example counts")
    wanted = "fraction" if federation.he.scheme is HeScheme.CKKS else "integer"
    if request.weighting != wanted:
        return Refusal(RefusalReason.NOT_THE_SUM, f"{request.weighting} weights in a {federation.he.scheme.value} federation")
    return None
