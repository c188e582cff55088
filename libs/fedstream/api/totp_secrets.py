"""TOTP secrets sealed at rest: the admin API's users table never holds one in plaintext.

Each secret is sealed exactly as fedstream.storage.envelope seals a blob — AES-256-GCM under a fresh data
key, the data key wrapped by the key manager (``fedstream.security.keys``) — with the user id as the
additional data, so a sealed secret copied onto another user's row does not open there. The wrapping key
belongs to a platform owner whose name is not an ``Identifier``: no participant can share it, and no
participant's erasure can shred it.
"""

from __future__ import annotations

import asyncio

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fedstream.security.keys import KeyManager, KeyManagerError
from fedstream.storage.blobs import BlobIntegrityError
from fedstream.storage.envelope import seal, unseal

OWNER = "platform/admin-api-totp"


class SealedSecretInvalid(Exception):
    """A sealed TOTP secret does not open: another user's, tampered with, or its wrapping key is gone."""


def _binding(user_id: str) -> str:
    return f"admin-api-totp:{user_id}"


class TotpSecretSealer:
    def __init__(self, keys: KeyManager) -> None:
        self.keys = keys

    def seal(self, user_id: str, secret: str) -> bytes:
        data_key = AESGCM.generate_key(256)
        return seal(secret.encode(), data_key, self.keys.wrap(OWNER, data_key), _binding(user_id))

    def open(self, user_id: str, sealed: bytes) -> str:
        try:
            return unseal(sealed, self.keys.unwrap, _binding(user_id)).decode()
        except (BlobIntegrityError, KeyManagerError, InvalidTag) as exc:
            raise SealedSecretInvalid(f"the TOTP secret of {user_id!r} does not open: {type(exc).__name__}") from None

    # Key managers do file or network I/O: off the event loop.

    async def seal_async(self, user_id: str, secret: str) -> bytes:
        return await asyncio.to_thread(self.seal, user_id, secret)

    async def open_async(self, user_id: str, sealed: bytes) -> str:
        return await asyncio.to_thread(self.open, user_id, sealed)
