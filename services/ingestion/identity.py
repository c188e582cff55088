"""Zero-trust admission rules as pure functions: who signed, with which key, when, and with what
permission (consent, business-associate agreement). The stateful parts (nonces, rate buckets) are in
``services.ingestion.gate``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from fedstream.security import message_auth
from fedstream.security.rate_limit import BucketPolicy
from services.ingestion.domain import Rejection
from schemas.events import RejectionReason, UpdateSubmitted
from schemas.identity import ANY_FEDERATION, TRAINING_PURPOSE
from schemas.topics import SUBMISSIONS

R = RejectionReason


@dataclass(frozen=True)
class KeyView:
    key_id: str
    participant_id: str
    organisation: str
    public_key: str
    revoked: bool = False


@dataclass(frozen=True)
class ConsentView:
    participant_id: str
    purpose: str
    scope: str
    expires_at: datetime
    granted: bool


@dataclass(frozen=True)
class BaaView:
    organisation: str
    expires_at: datetime
    active: bool


@dataclass(frozen=True)
class IdentityPolicy:
    # Accepted clock skew either way between a participant's signing time and ours; also how long a
    # nonce must be remembered (anything older is refused as stale).
    freshness_s: float = 300.0
    bucket: BucketPolicy = BucketPolicy()

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.freshness_s)


def check_signer(submission: UpdateSubmitted, key: KeyView | None, now: datetime, policy: IdentityPolicy) -> Rejection | None:
    """Is this submission signed, by an enrolled and unrevoked key of the participant it claims to be,
    recently enough? Nothing about the claimed participant is trusted before this passes."""
    return check_claim(submission, key) or check_signature(submission, key, now, policy)  # type: ignore[arg-type]


def check_claim(submission: UpdateSubmitted, key: KeyView | None) -> Rejection | None:
    """The cheap half (``message_auth.check_claim``): signed, with an enrolled, unrevoked key of the claimed participant."""
    return _rejection(message_auth.check_claim(submission, key))


def check_signature(submission: UpdateSubmitted, key: KeyView, now: datetime, policy: IdentityPolicy) -> Rejection | None:
    """The costly half, for a claim that passed ``check_claim``: the signature itself, and its freshness."""
    return _rejection(message_auth.check_signature(submission, SUBMISSIONS.name, key, now, policy.window))


def _rejection(refused: message_auth.Refused | None) -> Rejection | None:
    return None if refused is None else Rejection(R(refused.reason.value), refused.detail)


def check_permission(
    submission: UpdateSubmitted, key: KeyView, consents: list[ConsentView], baa: BaaView | None, now: datetime
) -> Rejection | None:
    """Consent for training in this federation, and an active BAA of the participant's organisation."""
    relevant = [c for c in consents if c.purpose == TRAINING_PURPOSE and c.scope in (submission.federation_id, ANY_FEDERATION)]
    # a withdrawal wins over any grant it overlaps: withdrawing consent must not need every scope undone
    if any(not c.granted for c in relevant) or not any(c.expires_at > now for c in relevant):
        return Rejection(R.NO_CONSENT, f"{submission.participant_id!r} has no valid consent for {TRAINING_PURPOSE} here")
    if baa is None or not baa.active or baa.expires_at <= now:
        return Rejection(R.NO_BAA, f"organisation {key.organisation!r} has no active business-associate agreement")
    return None

