"""Composition root of the registry service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from fedstream.ml.models import initial_weights  # numpy only: the registry never loads torch
from fedstream.service import ServiceDefinition, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.blobs import open_blob_store
from services.registry.adapters import PostgresRegistryRepository
from services.registry.handlers import RegistryHandlers
from schemas.topics import REGISTRY


class RegistrySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_REGISTRY_", extra="ignore")


def definition(settings: RegistrySettings) -> ServiceDefinition:

    endpoints = settings.resolved()
    handlers = RegistryHandlers(open_blob_store(endpoints.blob_store_url), initial_weights)
    return ServiceDefinition(name=REGISTRY, handlers=handlers.table(), repo_factory=PostgresRegistryRepository)


def main() -> None:
    settings = RegistrySettings.load()
    serve(definition(settings), settings.resolved())
