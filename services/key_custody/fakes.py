"""In-memory custody repository and key store for unit tests."""

from __future__ import annotations

from services.key_custody.domain import CustodyFederation
from services.key_custody.ports import HeldKeys


class InMemoryKeyStore:
    def __init__(self) -> None:
        self.keys: dict[str, HeldKeys] = {}

    def load(self, federation_id: str) -> HeldKeys | None:
        return self.keys.get(federation_id)

    def create(self, federation_id: str, keys: HeldKeys) -> HeldKeys:
        return self.keys.setdefault(federation_id, keys)


class InMemoryCustodyRepository:
    def __init__(self) -> None:
        self.federations: dict[str, CustodyFederation] = {}
        self.decryptions: dict[tuple[str, int], tuple[str, str, int]] = {}

    async def save_federation(self, federation: CustodyFederation) -> None:
        self.federations.setdefault(federation.federation_id, federation)

    async def federation(self, federation_id: str) -> CustodyFederation | None:
        return self.federations.get(federation_id)

    async def record_decryption(self, federation_id: str, round_number: int, ciphertext_sha256: str,
                                model_sha256: str, contributors: int) -> bool:
        key = (federation_id, round_number)
        if key in self.decryptions:
            return False
        self.decryptions[key] = (ciphertext_sha256, model_sha256, contributors)
        return True

    async def decrypted(self, federation_id: str, round_number: int) -> bool:
        return (federation_id, round_number) in self.decryptions
