"""Composition root of the ingestion service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from fedstream.security.rate_limit import BucketPolicy
from fedstream.service import ServiceDefinition, Timer, serve
from fedstream.settings import ServiceSettings
from fedstream.storage.envelope import blob_store_for
from fedstream.storage.coordination import RedisCoordination
from services.ingestion.adapters import PostgresAdmissionRepository
from services.ingestion.gate import ZeroTrustGate
from services.ingestion.identity import IdentityPolicy
from services.ingestion.handlers import IngestionHandlers
from schemas.base import utcnow
from schemas.topics import INGESTION


class IngestionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_INGESTION_", extra="ignore")

    # zero trust: accepted clock skew of a signature, and each participant's admission rate
    freshness_s: float = 300.0
    rate_per_s: float = 2.0
    rate_burst: float = 10.0
    # how long a submission waits for its federation/round to be seen open before it is refused
    park_ttl_s: float = 30.0


def definition(settings: IngestionSettings) -> ServiceDefinition:
    endpoints = settings.resolved()
    coordination = RedisCoordination.from_url(endpoints.redis_url)
    policy = IdentityPolicy(settings.freshness_s, BucketPolicy(settings.rate_per_s, settings.rate_burst))
    handlers = IngestionHandlers(
        blob_store_for(endpoints), coordination, gate=ZeroTrustGate(coordination, utcnow, policy),
        park_ttl_s=settings.park_ttl_s,
    )
    return ServiceDefinition(
        name=INGESTION, handlers=handlers.table(), repo_factory=PostgresAdmissionRepository, prefetch=handlers.prefetch,
        timers=(Timer(interval_s=2.0, tick=handlers.expire_parked),),
        on_malformed=handlers.on_malformed, lane_of=handlers.lane_of,
    )


def main() -> None:
    settings = IngestionSettings.load()
    serve(definition(settings), settings.resolved())
