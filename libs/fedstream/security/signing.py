"""Ed25519 signatures over a submission's canonical form (RFC 8785).

What is signed: the event type, the topic it travels on, every field of the event except its
``event_id`` (a transport id; the nonce is the message's identity) and the signature itself — so the
participant, federation, round, payload sha256 and size are all covered — plus the key id, nonce and
signing time. Changing any of them (another round, another claimed participant) breaks the signature.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime
from typing import TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedstream.security.canonical import canonical_json, timestamp
from schemas.base import Event
from schemas.identity import Signature

E = TypeVar("E", bound=Event)
UNSIGNED_FIELDS = {"event_id", "signature"}


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()  # the operating system's CSPRNG


def public_key_text(key: Ed25519PrivateKey) -> str:
    return b64url(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def key_id_of(public_key: str) -> str:
    """A key's fingerprint: the first 16 bytes of sha256 over its raw bytes."""
    return hashlib.sha256(unb64url(public_key)).hexdigest()[:32]


def signed_form(event: Event, topic: str, key_id: str, nonce: str, signed_at: datetime) -> bytes:
    return canonical_json({
        "type": event.TYPE,
        "topic": topic,
        "event": event.model_dump(mode="json", exclude=UNSIGNED_FIELDS),
        "key_id": key_id,
        "nonce": nonce,
        "signed_at": timestamp(signed_at),
    })


def sign(event: E, topic: str, key: Ed25519PrivateKey, now: datetime) -> E:
    """The event with its ``signature`` set; a fresh random nonce every call."""
    key_id, nonce = key_id_of(public_key_text(key)), secrets.token_hex(16)
    raw = key.sign(signed_form(event, topic, key_id, nonce, now))
    signature = Signature(key_id=key_id, nonce=nonce, signed_at=now, signature=b64url(raw))
    return event.model_copy(update={"signature": signature})


def verify(event: Event, topic: str, public_key: str) -> bool:
    """True if ``event.signature`` is a valid signature of ``event`` on ``topic`` by ``public_key``."""
    sig: Signature | None = getattr(event, "signature", None)
    if sig is None or key_id_of(public_key) != sig.key_id:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(unb64url(public_key)).verify(
            unb64url(sig.signature), signed_form(event, topic, sig.key_id, sig.nonce, sig.signed_at)
        )
    except (InvalidSignature, ValueError):
        return False
    return True
