"""The Vault transit adapter against a stand-in for hvac's transit API (no Vault server here).

The stand-in keeps Vault's semantics that the adapter relies on: named keys that must exist, real
AES-GCM under them, ``InvalidPath`` for a missing key, deletion only once ``deletion_allowed``."""

from __future__ import annotations

import base64
import hmac
import os

import hvac.exceptions
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedstream.security.keys import KeyDestroyed, VaultTransit


class FakeTransit:
    def __init__(self) -> None:
        self.keys: dict[str, dict] = {}

    def _key(self, name: str) -> dict:
        if name not in self.keys:
            raise hvac.exceptions.InvalidPath(f"no key {name}")
        return self.keys[name]

    def create_key(self, name, mount_point="transit"):
        self.keys.setdefault(name, {"secret": os.urandom(32), "deletion_allowed": False})

    def read_key(self, name, mount_point="transit"):
        return {"data": {"name": name, "deletion_allowed": self._key(name)["deletion_allowed"]}}

    def encrypt_data(self, name, plaintext, mount_point="transit"):
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(self._key(name)["secret"]).encrypt(nonce, base64.b64decode(plaintext), None)
        return {"data": {"ciphertext": "vault:v1:" + base64.b64encode(sealed).decode()}}

    def decrypt_data(self, name, ciphertext, mount_point="transit"):
        sealed = base64.b64decode(ciphertext.removeprefix("vault:v1:"))
        plain = AESGCM(self._key(name)["secret"]).decrypt(sealed[:12], sealed[12:], None)
        return {"data": {"plaintext": base64.b64encode(plain).decode()}}

    def generate_hmac(self, name, hash_input, mount_point="transit"):
        mac = hmac.digest(self._key(name)["secret"], base64.b64decode(hash_input), "sha256")
        return {"data": {"hmac": "vault:v1:" + base64.b64encode(mac).decode()}}

    def update_key_configuration(self, name, deletion_allowed=None, mount_point="transit"):
        self._key(name)["deletion_allowed"] = bool(deletion_allowed)

    def delete_key(self, name, mount_point="transit"):
        if not self._key(name)["deletion_allowed"]:
            raise hvac.exceptions.InvalidRequest("deletion is not allowed for this key")
        del self.keys[name]


class FakeClient:
    def __init__(self) -> None:
        self.secrets = type("Secrets", (), {"transit": FakeTransit()})()


@pytest.fixture
def vault():
    client = FakeClient()
    return VaultTransit(client), client.secrets.transit


def test_data_keys_are_wrapped_by_a_per_owner_transit_key_named_by_no_one(vault):
    keys, transit = vault
    wrapped = keys.wrap("hospital-a", b"d" * 32)
    assert keys.unwrap(wrapped) == b"d" * 32
    (name,) = keys.key_ids("hospital-a")
    assert "hospital" not in name and name in transit.keys
    assert keys.key_ids("hospital-b") == ()


def test_pseudonyms_are_stable_per_owner(vault):
    keys, _ = vault
    assert keys.pseudonym("hospital-a") == keys.pseudonym("hospital-a") != keys.pseudonym("hospital-b")


def test_destroy_deletes_the_transit_key_and_leaves_a_tombstone(vault):
    keys, transit = vault
    wrapped = keys.wrap("hospital-a", b"d" * 32)
    (name,) = keys.key_ids("hospital-a")
    assert keys.destroy("hospital-a") == (name,)
    assert name not in transit.keys and f"{name}-erased" in transit.keys
    with pytest.raises(KeyDestroyed):
        keys.unwrap(wrapped)
    with pytest.raises(KeyDestroyed):
        keys.wrap("hospital-a", b"d" * 32)
