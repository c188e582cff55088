"""Admission rules as pure functions: cheap checks first, tensor checks only for what passes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fedstream.storage import tensors
from fedstream.storage.blobs import BlobIntegrityError, BlobNotFound
from schemas.base import ParamSpec
from schemas.events import RejectionReason, UpdateSubmitted


@dataclass(frozen=True)
class FederationView:
    federation_id: str
    participants: frozenset[str]
    params: tuple[ParamSpec, ...]
    max_update_bytes: int
    he: tuple[str, int] | None = None  # crypto: he — (scheme, values per ciphertext); updates are ciphertexts


@dataclass(frozen=True)
class RoundView:
    federation_id: str
    round: int
    participants: frozenset[str]
    deadline: datetime
    open: bool

    def as_cache(self) -> dict[str, object]:
        return {"round": self.round, "participants": sorted(self.participants), "deadline": self.deadline.isoformat(), "open": self.open}

    @classmethod
    def from_cache(cls, federation_id: str, data: dict[str, object]) -> "RoundView":
        return cls(
            federation_id, int(data["round"]), frozenset(data["participants"]),  # type: ignore[arg-type]
            datetime.fromisoformat(str(data["deadline"])), bool(data["open"]),
        )


@dataclass(frozen=True)
class Rejection:
    reason: RejectionReason
    detail: str


def check_envelope(
    submission: UpdateSubmitted,
    federation: FederationView | None,
    current: RoundView | None,
    now: datetime,
) -> Rejection | None:
    """Everything that can be decided without reading the tensors (duplicates are caught when the
    admission is recorded: the unique key decides, so two instances cannot both admit)."""
    if federation is None:
        return Rejection(RejectionReason.UNKNOWN_FEDERATION, f"no federation {submission.federation_id!r}")
    if submission.participant_id not in federation.participants:
        return Rejection(RejectionReason.NOT_ENROLLED, f"{submission.participant_id!r} is not enrolled")
    if current is None or submission.round > current.round:
        return Rejection(RejectionReason.UNKNOWN_ROUND, f"round {submission.round} has not been opened")
    if submission.round < current.round or not current.open or now > current.deadline:
        return Rejection(RejectionReason.STALE_ROUND, f"round {submission.round} is closed")
    if submission.participant_id not in current.participants:
        return Rejection(RejectionReason.NOT_SELECTED, f"{submission.participant_id!r} was not selected for this round")
    if submission.update.size > federation.max_update_bytes:
        return Rejection(
            RejectionReason.OVERSIZE, f"update is {submission.update.size} bytes; the limit is {federation.max_update_bytes}"
        )
    return None


def check_tensors(payload: bytes, params: tuple[ParamSpec, ...], he: tuple[str, int] | None = None) -> Rejection | None:
    if he is not None:
        return check_ciphertext(payload, params, he)
    try:
        tensors.check_against(tensors.from_bytes(payload), params)
    except tensors.TensorError as exc:
        return Rejection(RejectionReason(exc.reason), str(exc))
    return None


def check_ciphertext(payload: bytes, params: tuple[ParamSpec, ...], he: tuple[str, int]) -> Rejection | None:
    """An HE federation's update: a well-formed ciphertext frame of the model's size (the aggregator,
    which holds the public context, checks the context fingerprint)."""
    from fedstream.crypto import he_frame
    from schemas.he import HeScheme

    try:
        he_frame.check_header(payload, None, HeScheme(he[0]), he[1], sum(p.size for p in params))
    except he_frame.CiphertextError as exc:
        return Rejection(RejectionReason(exc.reason), str(exc))
    return None


def blob_failure(exc: Exception) -> Rejection:
    if isinstance(exc, BlobIntegrityError):
        return Rejection(RejectionReason.HASH_MISMATCH, str(exc))
    if isinstance(exc, BlobNotFound):
        return Rejection(RejectionReason.BLOB_UNAVAILABLE, f"blob not found: {exc}")
    raise exc
