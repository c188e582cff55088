"""Composition root of the aggregation service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from fedstream.service import ServiceDefinition, Timer, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.blobs import open_blob_store
from services.aggregation.adapters import PostgresAggregationRepository
from services.aggregation.handlers import AggregationHandlers
from schemas.topics import AGGREGATION


class AggregationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_AGGREGATION_", extra="ignore")
    deadline_check_interval_s: float = 0.2


def definition(settings: AggregationSettings) -> ServiceDefinition:
    endpoints = settings.resolved()
    handlers = AggregationHandlers(open_blob_store(endpoints.blob_store_url))
    return ServiceDefinition(
        name=AGGREGATION,
        handlers=handlers.table(),
        repo_factory=PostgresAggregationRepository,
        timers=(Timer(settings.deadline_check_interval_s, handlers.close_due_rounds),),
    )


def main() -> None:
    settings = AggregationSettings.load()
    serve(definition(settings), settings.resolved())
