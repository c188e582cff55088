"""Key management behind one small port: each owner (a participant, or the platform) has a key-encryption
key (KEK) that wraps the per-blob data keys of envelope encryption, and derives the owner's keyed pseudonym.

Destroying an owner's KEK is crypto-shredding: every data key it wrapped, and so every blob, becomes
unreadable, and the pseudonym can no longer be linked back to the owner. A destroyed owner is remembered
(as a keyed hash, never by name) so that its key is not silently created again.

Adapters: ``LocalKeyring`` (default: one file under the state dir, AES-256-GCM under a master key),
``VaultTransit`` (production: HashiCorp Vault's transit engine via hvac, keys never leave Vault) and
``InMemoryKeyManager`` (the fake). ``open_key_manager`` picks one from a URL.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fedstream.storage.files import replace_atomically

KEY_BYTES, NONCE_BYTES = 32, 12  # AES-256-GCM, 96-bit random nonces
PSEUDONYM_PREFIX = "pn-"


class KeyManagerError(Exception):
    """Base of the key manager's errors."""


class KeyDestroyed(KeyManagerError):
    """The owner's key was destroyed (crypto-shredded): what it protected is gone for good."""


class UnknownKey(KeyManagerError):
    """A wrapped key names a key this key manager never had (wrong keyring, or tampered bytes)."""


class KeyringCorrupt(KeyManagerError):
    """The keyring file does not decrypt under the master key (wrong key, or tampering)."""


class KeyManager(Protocol):
    def wrap(self, owner: str, data_key: bytes) -> bytes:
        """``data_key`` encrypted under the owner's KEK (created on first use); KeyDestroyed once shredded."""

    def unwrap(self, wrapped: bytes) -> bytes:
        """The data key back; KeyDestroyed if its KEK was shredded."""

    def pseudonym(self, owner: str) -> str:
        """A stable keyed pseudonym of ``owner`` (an Identifier); unlinkable once the key is destroyed."""

    def key_ids(self, owner: str) -> tuple[str, ...]:
        """Opaque ids of the owner's live keys (never the owner's name); () if none."""

    def destroy(self, owner: str) -> tuple[str, ...]:
        """Shred the owner's keys for real and remember the owner as destroyed; returns the ids shredded."""


def pseudonym_from(digest: bytes) -> str:
    return PSEUDONYM_PREFIX + digest.hex()[:24]  # 96 bits: collision-free at any participant count


def _owner_bytes(owner: str) -> bytes:
    return b"fedstream-owner:" + owner.encode()


# --- the fake ----------------------------------------------------------------------------------


class InMemoryKeyManager:
    """Fake with the real semantics (real AES-GCM wrapping, real tombstones), nothing on disk."""

    def __init__(self) -> None:
        self.owners: dict[str, str | None] = {}  # owner → key id, None once destroyed
        self.keys: dict[str, bytes] = {}
        self.destroyed: set[str] = set()

    def _kek(self, owner: str, create: bool) -> tuple[str, bytes] | None:
        if owner in self.owners and self.owners[owner] is None:
            raise KeyDestroyed(f"the key of {owner!r} was destroyed")
        key_id = self.owners.get(owner)
        if key_id is None:
            if not create:
                return None
            key_id = secrets.token_hex(16)
            self.owners[owner], self.keys[key_id] = key_id, AESGCM.generate_key(256)
        return key_id, self.keys[key_id]

    def wrap(self, owner: str, data_key: bytes) -> bytes:
        key_id, kek = self._kek(owner, create=True)  # type: ignore[misc]
        return wrap_with(key_id, kek, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        key_id = wrapped_key_id(wrapped)
        if key_id in self.destroyed:
            raise KeyDestroyed(f"key {key_id} was destroyed")
        if key_id not in self.keys:
            raise UnknownKey(f"no key {key_id}")
        return unwrap_with(self.keys[key_id], wrapped)

    def pseudonym(self, owner: str) -> str:
        _, kek = self._kek(owner, create=True)  # type: ignore[misc]
        return pseudonym_from(hmac.digest(kek, _owner_bytes(owner), "sha256"))

    def key_ids(self, owner: str) -> tuple[str, ...]:
        key_id = self.owners.get(owner)
        return () if key_id is None else (key_id,)

    def destroy(self, owner: str) -> tuple[str, ...]:
        ids = self.key_ids(owner)
        for key_id in ids:
            del self.keys[key_id]
            self.destroyed.add(key_id)
        self.owners[owner] = None
        return ids


# --- local wrapping format (the fake and the local keyring share it) -------------------------------

_LOCAL_WRAP = b"FK1"


def wrap_with(key_id: str, kek: bytes, data_key: bytes) -> bytes:
    """``FK1 | key id (16 bytes) | nonce | AES-GCM(kek, data key, aad = key id)``."""
    raw_id = bytes.fromhex(key_id)
    nonce = os.urandom(NONCE_BYTES)
    return _LOCAL_WRAP + raw_id + nonce + AESGCM(kek).encrypt(nonce, data_key, _LOCAL_WRAP + raw_id)


def wrapped_key_id(wrapped: bytes) -> str:
    if not wrapped.startswith(_LOCAL_WRAP) or len(wrapped) < 3 + 16 + NONCE_BYTES + 16:
        raise UnknownKey("not a locally wrapped data key")
    return wrapped[3:19].hex()


def unwrap_with(kek: bytes, wrapped: bytes) -> bytes:
    raw_id, nonce, sealed = wrapped[3:19], wrapped[19:31], wrapped[31:]
    try:
        return AESGCM(kek).decrypt(nonce, sealed, _LOCAL_WRAP + raw_id)
    except InvalidTag:
        raise UnknownKey(f"wrapped key {raw_id.hex()} does not authenticate") from None


# --- the local keyring -----------------------------------------------------------------------------


class LocalKeyring:
    """One AES-256-GCM-encrypted JSON file: ``{"owners": {index: key id | null}, "keys": {key id: key}}``.

    ``index`` is an HMAC of the owner's name under a key derived from the master key, so even a decrypted
    keyring names nobody. Writers serialise on a lock file and replace the keyring atomically; a destroyed
    key is gone from the new file (and its id kept, to tell "destroyed" from "never existed").
    """

    FILE, LOCK = "keyring", "keyring.lock"

    def __init__(self, directory: Path, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise ValueError("the keyring's master key must be 32 bytes (AES-256)")
        self.directory = directory
        self._master = AESGCM(master_key)
        self._index_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"fedstream-keyring-index").derive(master_key)
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self._thread_lock = threading.Lock()

    def _index(self, owner: str) -> str:
        return hmac.digest(self._index_key, _owner_bytes(owner), "sha256").hex()

    # reading and writing the file

    def _path(self) -> Path:
        return self.directory / self.FILE

    def _read(self) -> dict[str, Any]:
        path = self._path()
        try:
            st = path.stat()
        except FileNotFoundError:
            return {"owners": {}, "keys": {}, "destroyed": []}
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        blob = path.read_bytes()
        try:
            state = json.loads(self._master.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], b"fedstream-keyring-v1"))
        except InvalidTag:
            raise KeyringCorrupt(f"{path} does not decrypt under the master key") from None
        self._cache = (stamp, state)
        return state

    def _write(self, state: dict[str, Any]) -> None:
        nonce = os.urandom(NONCE_BYTES)
        sealed = nonce + self._master.encrypt(nonce, json.dumps(state).encode(), b"fedstream-keyring-v1")
        replace_atomically(self._path(), sealed, durable=True)
        self._cache = None

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The current state, exclusively (threads and processes); changes to it are written on exit."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._thread_lock, open(self.directory / self.LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(json.dumps(self._read()))  # a private copy: the cache is not ours to edit
            before = json.dumps(state, sort_keys=True)
            yield state
            if json.dumps(state, sort_keys=True) != before:
                self._write(state)

    # the port

    def _kek(self, owner: str, create: bool) -> tuple[str, bytes] | None:
        index = self._index(owner)
        state = self._read()
        if index not in state["owners"] and create:
            with self._locked() as state:
                if index not in state["owners"]:  # another process may have created it meanwhile
                    key_id = secrets.token_hex(16)
                    state["owners"][index] = key_id
                    state["keys"][key_id] = base64.b64encode(AESGCM.generate_key(256)).decode()
            state = self._read()
        if index not in state["owners"]:
            return None
        key_id = state["owners"][index]
        if key_id is None:
            raise KeyDestroyed("this owner's key was destroyed")
        return key_id, base64.b64decode(state["keys"][key_id])

    def wrap(self, owner: str, data_key: bytes) -> bytes:
        key_id, kek = self._kek(owner, create=True)  # type: ignore[misc]
        return wrap_with(key_id, kek, data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        key_id = wrapped_key_id(wrapped)
        state = self._read()
        if key_id in state["destroyed"]:
            raise KeyDestroyed(f"key {key_id} was destroyed")
        if key_id not in state["keys"]:
            raise UnknownKey(f"no key {key_id} in {self._path()}")
        return unwrap_with(base64.b64decode(state["keys"][key_id]), wrapped)

    def pseudonym(self, owner: str) -> str:
        _, kek = self._kek(owner, create=True)  # type: ignore[misc]
        return pseudonym_from(hmac.digest(kek, _owner_bytes(owner), "sha256"))

    def key_ids(self, owner: str) -> tuple[str, ...]:
        key_id = self._read()["owners"].get(self._index(owner))
        return () if key_id is None else (key_id,)

    def destroy(self, owner: str) -> tuple[str, ...]:
        index = self._index(owner)
        with self._locked() as state:
            key_id = state["owners"].get(index)
            state["owners"][index] = None  # the tombstone: a keyed hash, not the name
            if key_id is not None:
                del state["keys"][key_id]
                state["destroyed"].append(key_id)
        return () if key_id is None else (key_id,)


def load_master_key(directory: Path, configured: SecretStr | None) -> bytes:
    """The configured key (base64 of 32 bytes), else ``<dir>/master.key``, made 0600 on first use."""
    if configured is not None:
        key = base64.b64decode(configured.get_secret_value())
        if len(key) != KEY_BYTES:
            raise ValueError("FEDSTREAM_MASTER_KEY must be base64 of 32 bytes")
        return key
    path = directory / "master.key"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            raise ValueError(f"{path} is readable by others; chmod 600 it") from None
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(AESGCM.generate_key(256))
    return path.read_bytes()


# --- HashiCorp Vault transit -----------------------------------------------------------------------

_VAULT_WRAP = b"VT1"
INDEX_KEY = "fedstream-owner-index"


class VaultTransit:
    """Keys live in Vault's transit engine and never leave it: wrapping, unwrapping and pseudonyms are
    Vault calls. Each owner's transit key is named by an HMAC of the owner under a platform index key, so
    Vault's key list names nobody; destroying deletes the key and leaves an empty ``…-erased`` key behind
    as the tombstone."""

    def __init__(self, client: Any, mount_point: str = "transit") -> None:
        self.transit, self.mount = client.secrets.transit, mount_point

    def _missing(self, exc: Exception) -> bool:
        import hvac.exceptions

        return isinstance(exc, hvac.exceptions.InvalidPath)

    def _exists(self, name: str) -> bool:
        try:
            self.transit.read_key(name=name, mount_point=self.mount)
            return True
        except Exception as exc:
            if self._missing(exc):
                return False
            raise

    def _name(self, owner: str) -> str:
        if not self._exists(INDEX_KEY):
            self.transit.create_key(name=INDEX_KEY, mount_point=self.mount)
        mac = self.transit.generate_hmac(
            name=INDEX_KEY, hash_input=base64.b64encode(_owner_bytes(owner)).decode(), mount_point=self.mount
        )["data"]["hmac"]
        return "fedstream-" + hashlib.sha256(mac.encode()).hexdigest()[:32]

    def _live_key(self, owner: str, create: bool) -> str | None:
        name = self._name(owner)
        if self._exists(name + "-erased"):
            raise KeyDestroyed("this owner's key was destroyed")
        if not self._exists(name):
            if not create:
                return None
            self.transit.create_key(name=name, mount_point=self.mount)
        return name

    def wrap(self, owner: str, data_key: bytes) -> bytes:
        name = self._live_key(owner, create=True)
        ciphertext = self.transit.encrypt_data(
            name=name, plaintext=base64.b64encode(data_key).decode(), mount_point=self.mount
        )["data"]["ciphertext"]
        return _VAULT_WRAP + json.dumps({"key": name, "ciphertext": ciphertext}).encode()

    def unwrap(self, wrapped: bytes) -> bytes:
        if not wrapped.startswith(_VAULT_WRAP):
            raise UnknownKey("not a Vault-wrapped data key")
        body = json.loads(wrapped[len(_VAULT_WRAP):])
        try:
            plaintext = self.transit.decrypt_data(name=body["key"], ciphertext=body["ciphertext"], mount_point=self.mount)
        except Exception as exc:
            if self._missing(exc) and self._exists(body["key"] + "-erased"):
                raise KeyDestroyed(f"key {body['key']} was destroyed") from None
            if self._missing(exc):
                raise UnknownKey(f"no transit key {body['key']}") from None
            raise
        return base64.b64decode(plaintext["data"]["plaintext"])

    def pseudonym(self, owner: str) -> str:
        name = self._live_key(owner, create=True)
        mac = self.transit.generate_hmac(
            name=name, hash_input=base64.b64encode(_owner_bytes(owner)).decode(), mount_point=self.mount
        )["data"]["hmac"]
        return pseudonym_from(hashlib.sha256(mac.encode()).digest())

    def key_ids(self, owner: str) -> tuple[str, ...]:
        name = self._live_key(owner, create=False)
        return () if name is None else (name,)

    def destroy(self, owner: str) -> tuple[str, ...]:
        name = self._name(owner)
        ids: tuple[str, ...] = ()
        if self._exists(name):
            self.transit.update_key_configuration(name=name, deletion_allowed=True, mount_point=self.mount)
            self.transit.delete_key(name=name, mount_point=self.mount)
            ids = (name,)
        if not self._exists(name + "-erased"):
            self.transit.create_key(name=name + "-erased", mount_point=self.mount)
        return ids


# --- configuration -----------------------------------------------------------------------------------


class KeySettings(BaseSettings):
    """Secrets for the key managers (environment only: they never go in the endpoints file)."""

    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_", extra="ignore")

    master_key: SecretStr | None = None  # base64 of 32 bytes; else <keyring dir>/master.key (0600)
    vault_addr: str | None = None
    vault_token: SecretStr | None = None
    vault_transit_mount: str = "transit"


def open_key_manager(url: str, settings: KeySettings | None = None) -> KeyManager:
    """``local:///dir`` → LocalKeyring; ``vault://`` → VaultTransit (address and token from settings);
    ``memory://`` → InMemoryKeyManager (tests and throwaway runs)."""
    settings = settings or KeySettings()
    parsed = urlparse(url)
    if parsed.scheme == "local":
        directory = Path(parsed.path)
        return LocalKeyring(directory, load_master_key(directory, settings.master_key))
    if parsed.scheme == "vault":
        import hvac

        address = settings.vault_addr or f"https://{parsed.netloc}"
        token = settings.vault_token.get_secret_value() if settings.vault_token else None
        return VaultTransit(hvac.Client(url=address, token=token), settings.vault_transit_mount)
    if parsed.scheme == "memory":
        return InMemoryKeyManager()
    raise ValueError(f"unknown key manager {url!r}: use local:///path, vault://host:port or memory://")
