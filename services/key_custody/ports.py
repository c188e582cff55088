"""What the custodian needs: its state in PostgreSQL, and secret keys kept encrypted at rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.key_custody.domain import CustodyFederation


@dataclass(frozen=True)
class HeldKeys:
    """A federation's keys as the custodian stores them: the secret context and the public one it published."""

    fingerprint: str
    secret_context: bytes
    public_context: bytes


class SecretKeyStore(Protocol):
    def load(self, federation_id: str) -> HeldKeys | None: ...

    def create(self, federation_id: str, keys: HeldKeys) -> HeldKeys:
        """Store ``keys`` unless keys already exist (another instance, or ``fedstream keys init``); return what is stored."""


class CustodyRepository(Protocol):
    async def save_federation(self, federation: CustodyFederation) -> None: ...

    async def federation(self, federation_id: str) -> CustodyFederation | None: ...

    async def record_decryption(self, federation_id: str, round_number: int, ciphertext_sha256: str,
                                model_sha256: str, contributors: int) -> bool:
        """False if this round was already decrypted (at most one decryption per round)."""

    async def decrypted(self, federation_id: str, round_number: int) -> bool: ...
