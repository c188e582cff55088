"""Settings for every fedstream process (12-factor: environment first, then the local stack's endpoints).

Each service has its own settings class with its own env prefix (``FEDSTREAM_INGESTION_…``) so one
machine can point two services at different stores; the shared ``FEDSTREAM_…`` names apply to all.
Addresses left unset are read from the endpoints file that ``fedstream stack up`` writes, so the
embedded stack needs no configuration at all.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from fedstream.connection_security import postgres_url, redis_url
from fedstream.messaging.logins import read_logins

ENDPOINTS_FILE = "endpoints.json"


def default_state_dir() -> Path:
    return Path.cwd() / ".fedstream"


# Set by the supervisor for each child: the pid it should not outlive (fedstream.service stops when it changes).
SUPERVISOR_PID_ENV = "FEDSTREAM_SUPERVISOR_PID"


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
    # Keys for encryption at rest (fedstream.security.keys): local:///dir (default: <state>/keyring), vault://host:port.
    key_manager_url: str | None = None
    # Transport security (README "Transport security"). The local stack's Kafka: "plaintext" (default)
    # or "sasl_ssl" (TLS, SCRAM logins per service and participant, ACLs from the topic table).
    kafka_security: str = "plaintext"
    # Kafka client side; unset: what the local stack recorded (PLAINTEXT for a broker it did not start).
    kafka_security_protocol: str | None = None  # PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
    kafka_sasl_mechanism: str | None = None  # SCRAM-SHA-512 | SCRAM-SHA-256 | PLAIN
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: Path | None = None
    # PostgreSQL / Redis credentials and TLS, kept apart from the URLs (secrets are mounted separately).
    database_password: SecretStr | None = None
    database_ca_file: Path | None = None  # sets sslmode=verify-full with this CA
    redis_username: str | None = None  # a Redis ACL user
    redis_password: SecretStr | None = None
    redis_ca_file: Path | None = None  # switches to rediss:// verified against this CA

    def endpoints_path(self) -> Path:
        return self.state_dir / ENDPOINTS_FILE

    def key_manager(self) -> str:
        """The key manager's URL: the configured one, else the local keyring under the state dir."""
        return self.key_manager_url or f"local://{(self.state_dir / 'keyring').resolve()}"

    def resolved(self) -> "Endpoints":
        """Explicit settings win; the rest comes from the running embedded stack."""
        recorded = _read_endpoints(self.endpoints_path())
        blob_default = (self.state_dir / "blobs").resolve().as_uri()
        values = {
            "kafka_bootstrap_servers": self.kafka_bootstrap_servers or recorded.get("kafka_bootstrap_servers"),
            "database_url": self.database_url or recorded.get("database_url"),
            "redis_url": self.redis_url or recorded.get("redis_url"),
            "blob_store_url": self.blob_store_url or recorded.get("blob_store_url") or blob_default,
            "key_manager_url": self.key_manager(),
            "kafka_flavour": recorded.get("kafka_flavour", "kafka"),
        }
        missing = [k for k, v in values.items() if not v]
        if missing:
            raise StackNotConfigured(
                f"no address for {', '.join(missing)}: run `fedstream stack up` "
                f"or set FEDSTREAM_{missing[0].upper()}"
            )
        return Endpoints(**_secured(self, values, recorded))


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
    key_manager_url: str | None = None  # None: blobs are stored unencrypted (see fedstream.storage.envelope)
    # "kafka" (Apache Kafka: idempotent producers) or "tansu" (no idempotence, no transactions)
    kafka_flavour: str = "kafka"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ca_file: str | None = None

    @property
    def supports_idempotent_producer(self) -> bool:
        return self.kafka_flavour == "kafka"


class StackNotConfigured(RuntimeError):
    """No address was given for a store and no embedded stack is running."""


def _secured(settings: StackSettings, values: dict[str, str], recorded: dict[str, str]) -> dict[str, object]:
    """The addresses with the stores' credentials and TLS folded in, plus the Kafka client's security.

    Every field is passed explicitly: Endpoints is a BaseSettings, and an unset one would be read
    from an unprefixed environment variable (KAFKA_PASSWORD) by accident."""
    return {
        **values,
        "database_url": postgres_url(
            values["database_url"], password=_reveal(settings.database_password), ca_file=settings.database_ca_file
        ),
        "redis_url": redis_url(
            values["redis_url"], username=settings.redis_username, password=_redis_password(settings, recorded),
            ca_file=settings.redis_ca_file,
        ),
        **_kafka_security(settings, recorded),
    }


def _kafka_security(settings: StackSettings, recorded: dict[str, str]) -> dict[str, object]:
    """Explicit settings; else what a secured local stack recorded (only for the broker it started)."""
    if settings.kafka_bootstrap_servers:
        recorded = {}
    username, password = settings.kafka_username, settings.kafka_password
    if username is None and recorded.get("kafka_logins_file"):
        # Tools given no login of their own use the local stack's admin login.
        login = read_logins(Path(recorded["kafka_logins_file"])).get(recorded.get("kafka_local_user", ""))
        if login is not None:
            username, password = login.username, SecretStr(login.password)
    ca_file = settings.kafka_ca_file or recorded.get("kafka_ca_file")
    return {
        "kafka_security_protocol": settings.kafka_security_protocol or recorded.get("kafka_security_protocol") or "PLAINTEXT",
        "kafka_sasl_mechanism": settings.kafka_sasl_mechanism or recorded.get("kafka_sasl_mechanism"),
        "kafka_username": username,
        "kafka_password": password,
        "kafka_ca_file": str(ca_file) if ca_file else None,
    }


def _redis_password(settings: StackSettings, recorded: dict[str, str]) -> str | None:
    if settings.redis_password is not None:
        return settings.redis_password.get_secret_value()
    if recorded.get("redis_password_file") and not settings.redis_url:  # a secured local stack's Redis
        return Path(recorded["redis_password_file"]).read_text().strip()
    return None


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _read_endpoints(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def write_endpoints(path: Path, endpoints: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(endpoints, indent=2))
    tmp.replace(path)
