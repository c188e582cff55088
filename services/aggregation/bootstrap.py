"""Composition root of the aggregation service."""

from __future__ import annotations

from functools import partial

from pydantic_settings import SettingsConfigDict

from fedstream.crypto.he_parallel import ProcessPoolSummer
from fedstream.service import ServiceDefinition, Timer, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.envelope import blob_store_for
from services.aggregation.adapters import PostgresAggregationRepository
from services.aggregation.handlers import AggregationHandlers
from schemas.topics import AGGREGATION


class AggregationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_AGGREGATION_", extra="ignore")
    deadline_check_interval_s: float = 0.2
    he_workers: int = 2  # processes that deserialise and add an HE round's ciphertexts


def definition(settings: AggregationSettings) -> ServiceDefinition:
    endpoints = settings.resolved()
    summer = ProcessPoolSummer(partial(blob_store_for, endpoints), settings.he_workers)
    handlers = AggregationHandlers(blob_store_for(endpoints), summer=summer)
    return ServiceDefinition(
        name=AGGREGATION,
        handlers=handlers.table(),
        repo_factory=PostgresAggregationRepository,
        timers=(Timer(settings.deadline_check_interval_s, handlers.close_due_rounds),),
    )


def main() -> None:
    settings = AggregationSettings.load()
    serve(definition(settings), settings.resolved())
