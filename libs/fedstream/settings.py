"""Settings for every fedstream process (12-factor: environment first, then the local stack's endpoints).

Each service has its own settings class with its own env prefix (``FEDSTREAM_INGESTION_…``) so one
machine can point two services at different stores; the shared ``FEDSTREAM_…`` names apply to all.
Addresses left unset are read from the endpoints file that ``fedstream stack up`` writes, so the
embedded stack needs no configuration at all.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENDPOINTS_FILE = "endpoints.json"


def default_state_dir() -> Path:
    return Path.cwd() / ".fedstream"


class StackSettings(BaseSettings):
    """Where the infrastructure lives. Unset addresses mean: start (or reuse) the embedded stack."""

    model_config = SettingsConfigDict(env_prefix="FEDSTREAM_", extra="ignore")

    state_dir: Path = Field(default_factory=default_state_dir)
    kafka_bootstrap_servers: str | None = None
    database_url: str | None = None
    redis_url: str | None = None
    blob_store_url: str | None = None
    # "auto": Apache Kafka on the local Java, Tansu where no Java exists; "kafka" or "tansu" to force one.
    broker: str = "auto"

    def endpoints_path(self) -> Path:
        return self.state_dir / ENDPOINTS_FILE

    def resolved(self) -> "Endpoints":
        """Explicit settings win; the rest comes from the running embedded stack."""
        recorded = _read_endpoints(self.endpoints_path())
        blob_default = (self.state_dir / "blobs").resolve().as_uri()
        values = {
            "kafka_bootstrap_servers": self.kafka_bootstrap_servers or recorded.get("kafka_bootstrap_servers"),
            "database_url": self.database_url or recorded.get("database_url"),
            "redis_url": self.redis_url or recorded.get("redis_url"),
            "blob_store_url": self.blob_store_url or recorded.get("blob_store_url") or blob_default,
            "kafka_flavour": recorded.get("kafka_flavour", "kafka"),
        }
        missing = [k for k, v in values.items() if not v]
        if missing:
            raise StackNotConfigured(
                f"no address for {', '.join(missing)}: run `fedstream stack up` "
                f"or set FEDSTREAM_{missing[0].upper()}"
            )
        return Endpoints(**values)


class ServiceSettings(StackSettings):
    """Base of each service's settings: its own prefix (``FEDSTREAM_<SERVICE>_…``) wins, shared names fill in."""

    @classmethod
    def load(cls) -> "ServiceSettings":
        own, shared = cls(), StackSettings()
        inherited = {
            name: getattr(shared, name)
            for name in StackSettings.model_fields
            if name not in own.model_fields_set and name in shared.model_fields_set
        }
        return own.model_copy(update=inherited)


class Endpoints(BaseSettings):
    """Resolved addresses of the stack a process talks to."""

    model_config = SettingsConfigDict(frozen=True)

    kafka_bootstrap_servers: str
    database_url: str
    redis_url: str
    blob_store_url: str
    # "kafka" (Apache Kafka: idempotent producers) or "tansu" (no idempotence, no transactions)
    kafka_flavour: str = "kafka"

    @property
    def supports_idempotent_producer(self) -> bool:
        return self.kafka_flavour == "kafka"


class StackNotConfigured(RuntimeError):
    """No address was given for a store and no embedded stack is running."""


def _read_endpoints(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def write_endpoints(path: Path, endpoints: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(endpoints, indent=2))
    tmp.replace(path)
