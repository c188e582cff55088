"""Composition root of the compliance service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from fedstream.service import ServiceDefinition, serve
from fedstream.settings import ServiceSettings
from services.compliance.adapters import PostgresAuditRepository
from services.compliance.handlers import ComplianceHandlers
from schemas.topics import COMPLIANCE


class ComplianceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_COMPLIANCE_", extra="ignore")


def definition(settings: ComplianceSettings) -> ServiceDefinition:
    return ServiceDefinition(name=COMPLIANCE, handlers=ComplianceHandlers().table(), repo_factory=PostgresAuditRepository)


def main() -> None:
    settings = ComplianceSettings.load()
    serve(definition(settings), settings.resolved())
