"""Settings for every fedstream process (12-factor: environment first, then the local stack's endpoints).

Each service has its own settings class with its own env prefix (``FEDSTREAM_INGESTION_…``) so one
machine can point two services at different stores; the shared ``FEDSTREAM_…`` names apply to all.
Addresses left unset are read from the endpoints file that ``fedstream stack up`` writes, so the
embedded stack needs no configuration at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator
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
    # database_url is the owner's login (migrations, tooling); the services and the admin API connect as
    # application logins that own nothing and cannot bypass row-level security (migrations 017, 019).
    database_password: SecretStr | None = None
    app_database_url: str | None = None  # the six services and the key custodian (fedstream_app)
    app_database_password: SecretStr | None = None
    api_database_url: str | None = None  # the admin API (fedstream_api)
    api_database_password: SecretStr | None = None
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
            "database_url": self.database_url or recorded.get("database_url") or self.app_database_url or self.api_database_url,
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


    def resolved_database(self) -> dict[str, str]:
        """Only the owner's and the application logins' URLs: what `fedstream stack migrate` needs (no Kafka, no Redis)."""
        recorded = _read_endpoints(self.endpoints_path())
        owner = self.database_url or recorded.get("database_url") or self.app_database_url or self.api_database_url
        if not owner:
            raise StackNotConfigured("no address for database_url: run `fedstream stack up` or set FEDSTREAM_DATABASE_URL")
        return database_urls(self, owner, recorded)


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
    database_url: str  # the owner: migrations and tooling
    # The application logins (the services; the admin API). Unset: the owner's URL (one login for all).
    app_database_url: str = ""
    api_database_url: str = ""
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

    @model_validator(mode="before")
    @classmethod
    def _one_login_for_all_by_default(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("database_url"):
            data = {**data, **{k: data["database_url"] for k in ("app_database_url", "api_database_url") if not data.get(k)}}
        return data

    @property
    def supports_idempotent_producer(self) -> bool:
        return self.kafka_flavour == "kafka"

    @property
    def login_urls(self) -> tuple[str, ...]:
        """The application logins' URLs that are not the owner's (their passwords are set by the owner)."""
        return logins_apart_from(self.database_url, self.app_database_url, self.api_database_url)


def logins_apart_from(owner_url: str, *urls: str) -> tuple[str, ...]:
    owner = urlsplit(owner_url).username
    return tuple(dict.fromkeys(url for url in urls if urlsplit(url).username != owner))


class StackNotConfigured(RuntimeError):
    """No address was given for a store and no embedded stack is running."""


def _secured(settings: StackSettings, values: dict[str, str], recorded: dict[str, str]) -> dict[str, object]:
    """The addresses with the stores' credentials and TLS folded in, plus the Kafka client's security.

    Every field is passed explicitly: Endpoints is a BaseSettings, and an unset one would be read
    from an unprefixed environment variable (KAFKA_PASSWORD) by accident."""
    return {
        **values,
        **database_urls(settings, values["database_url"], recorded),
        "redis_url": redis_url(
            values["redis_url"], username=settings.redis_username, password=_redis_password(settings, recorded),
            ca_file=settings.redis_ca_file,
        ),
        **_kafka_security(settings, recorded),
    }


def database_urls(settings: StackSettings, owner: str, recorded: dict[str, str]) -> dict[str, str]:
    """The owner's URL and the application logins' URLs, each with its password and TLS folded in.

    A login comes from its own setting; else, for the local stack's own server (no explicit
    FEDSTREAM_DATABASE_URL), from what `stack up` recorded, its password from the stack's 0600 logins
    file; else it is the owner's URL. A process given only an application login (a service container)
    uses that login as its "owner" too: it holds no other."""
    local = {} if settings.database_url else recorded
    logins = json.loads(Path(local["database_logins_file"]).read_text()) if local.get("database_logins_file") else {}
    ca_file = settings.database_ca_file

    def login(explicit: str | None, password: SecretStr | None, recorded_url: str | None) -> str | None:
        url = explicit or recorded_url
        if url is None:
            return None
        secret = _reveal(password) if password is not None else logins.get(urlsplit(url).username or "")
        return postgres_url(url, password=secret, ca_file=ca_file)

    app = login(settings.app_database_url, settings.app_database_password, local.get("app_database_url"))
    api = login(settings.api_database_url, settings.api_database_password, local.get("api_database_url"))
    if settings.database_url or recorded.get("database_url"):
        owner_url = postgres_url(owner, password=_reveal(settings.database_password), ca_file=ca_file)
    else:
        owner_url = app or api or owner
    return {"database_url": owner_url, "app_database_url": app or owner_url, "api_database_url": api or owner_url}


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
