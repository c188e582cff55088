"""Composition root of the key custodian: its own process and settings, never part of aggregation."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from fedstream.security.keys import open_key_manager
from fedstream.service import ServiceDefinition, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.envelope import blob_store_for
from services.key_custody.adapters import KeyfileKeyStore, PostgresCustodyRepository
from services.key_custody.handlers import CustodyHandlers
from schemas.topics import KEY_CUSTODY


class KeyCustodySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_KEY_CUSTODY_", extra="ignore")
    # Where the sealed HE secret contexts live; default <state dir>/keys/custody.
    key_dir: Path | None = None

    def key_directory(self) -> Path:
        return self.key_dir or self.state_dir / "keys" / "custody"

    def key_store(self) -> KeyfileKeyStore:
        """Needs no running stack (``fedstream keys init`` runs before one): only the key manager's URL."""
        return KeyfileKeyStore(self.key_directory(), open_key_manager(self.key_manager()))


def definition(settings: KeyCustodySettings) -> ServiceDefinition:
    endpoints = settings.resolved()
    handlers = CustodyHandlers(blob_store_for(endpoints), settings.key_store())
    return ServiceDefinition(name=KEY_CUSTODY, handlers=handlers.table(), repo_factory=PostgresCustodyRepository)


def main() -> None:
    settings = KeyCustodySettings.load()
    serve(definition(settings), settings.resolved())
