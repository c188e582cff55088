"""TOTP secrets sealed at rest: AES-256-GCM under a data key the key manager wraps, bound to the user."""

from __future__ import annotations

import base64

import pyotp
import pytest

from fedstream.api.totp_secrets import OWNER, SealedSecretInvalid, TotpSecretSealer
from fedstream.security.keys import InMemoryKeyManager
from schemas.base import Identifier


def sealer() -> TotpSecretSealer:
    return TotpSecretSealer(InMemoryKeyManager())


def test_a_sealed_secret_opens_for_its_user_and_shows_nothing_of_the_secret():
    s, secret = sealer(), pyotp.random_base32()
    sealed = s.seal("dpo-1", secret)
    assert s.open("dpo-1", sealed) == secret
    for form in (secret.encode(), secret.lower().encode(), base64.b32decode(secret), base64.b32decode(secret).hex().encode()):
        assert form not in sealed
    assert s.seal("dpo-1", secret) != sealed  # a fresh data key and nonce every time


def test_a_secret_sealed_for_one_user_does_not_open_for_another():
    s = sealer()
    with pytest.raises(SealedSecretInvalid):
        s.open("admin-1", s.seal("dpo-1", pyotp.random_base32()))


@pytest.mark.parametrize("at", [10, -1])
def test_a_tampered_secret_does_not_open(at):
    s = sealer()
    sealed = bytearray(s.seal("dpo-1", pyotp.random_base32()))
    sealed[at] ^= 1
    with pytest.raises(SealedSecretInvalid):
        s.open("dpo-1", bytes(sealed))


def test_secrets_are_wrapped_by_a_platform_key_no_participant_can_share_or_erase():
    from pydantic import TypeAdapter, ValidationError

    with pytest.raises(ValidationError):
        TypeAdapter(Identifier).validate_python(OWNER)
    keys = InMemoryKeyManager()
    s, secret = TotpSecretSealer(keys), pyotp.random_base32()
    sealed = s.seal("dpo-1", secret)
    assert list(keys.owners) == [OWNER]
    keys.destroy(OWNER)  # only destroying the platform key itself makes them unreadable
    with pytest.raises(SealedSecretInvalid):
        s.open("dpo-1", sealed)


def test_no_secret_accepts_no_code():
    from fedstream.api.auth import totp_step

    assert totp_step(None, "123456", 1_900_000_000.0) is None
