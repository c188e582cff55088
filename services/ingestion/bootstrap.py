"""Composition root of the ingestion service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from fedstream.service import ServiceDefinition, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.blobs import open_blob_store
from fedstream.storage.coordination import RedisCoordination
from services.ingestion.adapters import PostgresAdmissionRepository
from services.ingestion.handlers import IngestionHandlers
from schemas.topics import INGESTION


class IngestionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_INGESTION_", extra="ignore")


def definition(settings: IngestionSettings) -> ServiceDefinition:
    endpoints = settings.resolved()
    handlers = IngestionHandlers(open_blob_store(endpoints.blob_store_url), RedisCoordination.from_url(endpoints.redis_url))
    return ServiceDefinition(
        name=INGESTION, handlers=handlers.table(), repo_factory=PostgresAdmissionRepository, prefetch=handlers.prefetch
    )


def main() -> None:
    settings = IngestionSettings.load()
    serve(definition(settings), settings.resolved())
