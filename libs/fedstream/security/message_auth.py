"""Is a participant's message authentic? One pure decision for every signed participant message
(update submissions, heartbeats, evaluation reports), whichever service receives it.

A message is accepted when it is signed (``fedstream.security.signing``) by an enrolled, unrevoked key of
the participant it claims to come from (its ``participant_id``, and ``source`` ``participant/<id>``),
the signature covers it on the topic it arrived on, and it was signed within the freshness window of the
receiver's clock. Replay is the caller's part: it needs state (a nonce claim, see ``nonce_of``), and the
caller claims the nonce only after this accepts, so an impostor cannot use up a participant's nonces.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from fedstream.security import signing
from schemas.base import Event
from schemas.identity import Signature
from schemas.topics import PARTICIPANT


class Refusal(StrEnum):
    """Why a message was refused; the same words as ``schemas.events.RejectionReason`` for updates, so
    dashboards and alert rules read one vocabulary."""

    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown_key"
    KEY_REVOKED = "key_revoked"
    SOURCE_MISMATCH = "source_mismatch"  # the key belongs to another participant than the one claimed
    SIGNATURE_INVALID = "signature_invalid"
    STALE = "stale"  # signed outside the freshness window
    REPLAYED = "replayed"  # decided by the caller's nonce claim, never by ``authenticate``


class SignerKey(Protocol):
    """What a receiver's key projection knows of an enrolled key (ingestion's and validation's views both fit)."""

    key_id: str
    participant_id: str
    public_key: str
    revoked: bool


@dataclass(frozen=True)
class NonceClaim:
    """A message's claim on its key's nonce, for a receiver's durable replay guard (one row per key and nonce)."""

    key_id: str
    nonce: str
    event_id: UUID
    signed_at: datetime


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    detail: str


def key_id_of(event: Event) -> str | None:
    """The key to look up in the receiver's projection; None for an unsigned message."""
    sig: Signature | None = getattr(event, "signature", None)
    return None if sig is None else sig.key_id


def nonce_of(event: Event) -> str | None:
    """The message's single-use identity for a replay claim (per key: nonces are random per signature)."""
    sig: Signature | None = getattr(event, "signature", None)
    return None if sig is None else f"{sig.key_id}:{sig.nonce}"


def authenticate(event: Event, topic: str, key: SignerKey | None, now: datetime, window: timedelta) -> Refused | None:
    """None if ``event`` is signed, on ``topic``, by ``key`` (the projection's view of its key id, or None if
    unknown), an unrevoked key of the participant the event claims to be, within ``window`` of ``now``;
    otherwise the first reason it is not. Nothing the event claims is believed before this passes."""
    return check_claim(event, key) or check_signature(event, topic, key, now, window)  # type: ignore[arg-type]


def check_claim(event: Event, key: SignerKey | None) -> Refused | None:
    """The cheap half: signed at all, with an enrolled, unrevoked key of the participant it claims to be.
    (Ingestion runs it alone first: refusing a flood must not cost a signature check per message.)"""
    sig: Signature | None = getattr(event, "signature", None)
    claimed = getattr(event, "participant_id", None)
    if sig is None:
        return Refused(Refusal.UNSIGNED, f"the {type(event).__name__} carries no signature")
    if key is None:
        return Refused(Refusal.UNKNOWN_KEY, f"key {sig.key_id} is not enrolled")
    if key.revoked:
        return Refused(Refusal.KEY_REVOKED, f"key {sig.key_id} of {key.participant_id!r} was revoked")
    if key.participant_id != claimed or event.source != f"{PARTICIPANT}/{claimed}":
        return Refused(Refusal.SOURCE_MISMATCH, f"key {sig.key_id} belongs to {key.participant_id!r}, not to {claimed!r}")
    return None


def check_signature(event: Event, topic: str, key: SignerKey, now: datetime, window: timedelta) -> Refused | None:
    """The costly half, for a claim ``check_claim`` accepted: the signature itself, then its freshness."""
    sig: Signature = event.signature  # type: ignore[attr-defined] - check_claim saw it
    if not signing.verify(event, topic, key.public_key):
        return Refused(Refusal.SIGNATURE_INVALID, f"the signature does not match the {type(event).__name__}")
    # after the signature: only then is signed_at the signer's word, not anyone's
    if abs(now - sig.signed_at) > window:
        return Refused(Refusal.STALE, f"signed at {sig.signed_at.isoformat()}, outside the ±{window.total_seconds():g}s window")
    return None
