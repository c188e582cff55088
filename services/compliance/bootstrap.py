"""Composition root of the compliance service."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import SettingsConfigDict

from fedstream.service import ServiceDefinition, Timer, serve
from fedstream.settings import ServiceSettings
from services.compliance.adapters import PostgresAuditRepository
from services.compliance.checkpointer import Checkpointer, default_key_path, load_signing_key
from services.compliance.erasure_adapters import erasure_services
from services.compliance.handlers import ComplianceHandlers
from schemas.topics import COMPLIANCE


class ComplianceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_COMPLIANCE_", extra="ignore")
    # How often a signed Merkle checkpoint of the audit trail is made (only when rows were added).
    checkpoint_interval_s: float = 15.0
    # The Ed25519 checkpoint key (PEM); default <state dir>/keys/compliance/audit-checkpoint.pem.
    checkpoint_key_file: Path | None = None
    # How often keys that committed erasures left due are destroyed (normally at once, after the commit;
    # this catches a crash in between). It also runs at start.
    shred_interval_s: float = 5.0

    def checkpoint_key_path(self) -> Path:
        return self.checkpoint_key_file or default_key_path(self.state_dir)


def definition(settings: ComplianceSettings) -> ServiceDefinition:
    checkpointer = Checkpointer(load_signing_key(settings.checkpoint_key_path()))
    handlers = ComplianceHandlers(erasure_services(settings.resolved()))
    return ServiceDefinition(
        name=COMPLIANCE, handlers=handlers.table(), repo_factory=PostgresAuditRepository,
        timers=(Timer(settings.checkpoint_interval_s, checkpointer.tick), Timer(settings.shred_interval_s, handlers.shred_pending)),
    )


def main() -> None:
    settings = ComplianceSettings.load()
    serve(definition(settings), settings.resolved())
