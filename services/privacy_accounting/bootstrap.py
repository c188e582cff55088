"""Composition root of the privacy-accounting service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from fedstream.privacy.accountant import TwoAccountants
from fedstream.service import ServiceDefinition, serve
from fedstream.settings import ServiceSettings
from services.privacy_accounting.adapters import PostgresLedgerRepository
from services.privacy_accounting.handlers import PrivacyHandlers
from schemas.topics import PRIVACY


class PrivacySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_PRIVACY_", extra="ignore")


def definition(settings: PrivacySettings) -> ServiceDefinition:
    return ServiceDefinition(
        name=PRIVACY, handlers=PrivacyHandlers(TwoAccountants()).table(), repo_factory=PostgresLedgerRepository
    )


def main() -> None:
    settings = PrivacySettings.load()
    serve(definition(settings), settings.resolved())
