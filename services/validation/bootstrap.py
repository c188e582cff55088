"""Composition root of the validation service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from fedstream.service import ServiceDefinition, Timer, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.blobs import open_blob_store
from services.validation.adapters import PostgresValidationRepository
from services.validation.handlers import ValidationHandlers
from schemas.topics import VALIDATION


class ValidationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_VALIDATION_", extra="ignore")
    deadline_check_interval_s: float = 0.2


def definition(settings: ValidationSettings) -> ServiceDefinition:
    endpoints = settings.resolved()
    handlers = ValidationHandlers(open_blob_store(endpoints.blob_store_url))
    return ServiceDefinition(
        name=VALIDATION,
        handlers=handlers.table(),
        repo_factory=PostgresValidationRepository,
        timers=(Timer(settings.deadline_check_interval_s, handlers.decide_overdue),),
    )


def main() -> None:
    settings = ValidationSettings.load()
    serve(definition(settings), settings.resolved())
