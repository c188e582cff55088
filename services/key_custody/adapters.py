"""PostgreSQL custody state (infra/migrations/013_homomorphic_encryption.sql) and the keyfile key store."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedstream.security.keys import KeyManager
from fedstream.storage.files import create_once
from services.key_custody.domain import CustodyFederation
from services.key_custody.ports import HeldKeys
from schemas.base import ParamSpec
from schemas.he import HeSpec


class PostgresCustodyRepository:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def save_federation(self, f: CustodyFederation) -> None:
        await self.conn.execute(
            "INSERT INTO custody_federations (federation_id, scheme, fingerprint, quorum, params, he) "
            "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
            f.federation_id, f.he.scheme.value, f.fingerprint, f.quorum,
            [p.model_dump(mode="json") for p in f.params], f.he.model_dump(mode="json"),
        )

    async def federation(self, federation_id: str) -> CustodyFederation | None:
        row = await self.conn.fetchrow("SELECT * FROM custody_federations WHERE federation_id = $1", federation_id)
        if row is None:
            return None
        return CustodyFederation(
            row["federation_id"], row["fingerprint"], row["quorum"],
            tuple(ParamSpec.model_validate(p, strict=False) for p in row["params"]),
            HeSpec.model_validate(row["he"], strict=False),
        )

    async def record_decryption(self, federation_id: str, round_number: int, ciphertext_sha256: str,
                                model_sha256: str, contributors: int) -> bool:
        status = await self.conn.execute(
            "INSERT INTO custody_decryptions (federation_id, round, ciphertext_sha256, model_sha256, contributors) "
            "VALUES ($1,$2,$3,$4,$5) ON CONFLICT DO NOTHING",
            federation_id, round_number, ciphertext_sha256, model_sha256, contributors,
        )
        return status.endswith(" 1")

    async def decrypted(self, federation_id: str, round_number: int) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT 1 FROM custody_decryptions WHERE federation_id = $1 AND round = $2", federation_id, round_number
        ))


class KeyStoreError(Exception):
    """A keyfile that is unreadable, or does not decrypt (wrong key manager, or tampering)."""


class KeyfileKeyStore:
    """One file per federation under ``directory``: the secret context sealed with AES-256-GCM under a fresh
    data key, which the key manager wraps (local keyring by default, Vault transit in production).

    The federation id and fingerprint are authenticated data, so a keyfile renamed to another federation
    does not decrypt."""

    def __init__(self, directory: Path, keys: KeyManager) -> None:
        self.directory, self.keys = directory, keys

    def _path(self, federation_id: str) -> Path:
        return self.directory / f"{federation_id}.he.json"

    def load(self, federation_id: str) -> HeldKeys | None:
        path = self._path(federation_id)
        if not path.exists():
            return None
        try:
            doc = json.loads(path.read_text())
            data_key = self.keys.unwrap(base64.b64decode(doc["wrapped_key"]))
            secret = AESGCM(data_key).decrypt(
                base64.b64decode(doc["nonce"]), base64.b64decode(doc["secret_context"]),
                _aad(federation_id, doc["fingerprint"]),
            )
            return HeldKeys(doc["fingerprint"], secret, base64.b64decode(doc["public_context"]))
        except (InvalidTag, KeyError, ValueError) as exc:
            raise KeyStoreError(f"{path}: does not open ({type(exc).__name__})") from None

    def create(self, federation_id: str, keys: HeldKeys) -> HeldKeys:
        data_key, nonce = AESGCM.generate_key(bit_length=256), secrets.token_bytes(12)
        doc = {
            "federation_id": federation_id,
            "fingerprint": keys.fingerprint,
            "wrapped_key": base64.b64encode(self.keys.wrap(_owner(federation_id), data_key)).decode(),
            "nonce": base64.b64encode(nonce).decode(),
            "secret_context": base64.b64encode(
                AESGCM(data_key).encrypt(nonce, keys.secret_context, _aad(federation_id, keys.fingerprint))
            ).decode(),
            "public_context": base64.b64encode(keys.public_context).decode(),
        }
        if not create_once(self._path(federation_id), json.dumps(doc).encode()):
            existing = self.load(federation_id)
            assert existing is not None
            return existing
        return keys


def _owner(federation_id: str) -> str:
    return f"key-custody/{federation_id}"


def _aad(federation_id: str, fingerprint: str) -> bytes:
    return f"fedstream-he-secret-context:{federation_id}:{fingerprint}".encode()


