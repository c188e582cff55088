"""The embedded broker's ``sasl_ssl`` mode: TLS, SCRAM-SHA-512 logins and ACLs from the topic table.

Opt-in (``FEDSTREAM_KAFKA_SECURITY=sasl_ssl``); the default stays plaintext so the demo and the
suites start fast. What it adds to ``<state>/kafka``:

- ``tls/``: a CA and a loopback broker certificate (``fedstream.stack.tls``);
- ``kafka-logins.json`` (0600): admin, one login per service, the operator, and every participant
  added with ``add_participant``;
- the credentials themselves live in the broker's metadata: the platform's are written when the log
  dir is formatted (``StorageTool format --add-scram``), a participant's are added later with
  Kafka's ConfigCommand (aiokafka cannot alter SCRAM credentials);
- ACLs (``fedstream.messaging.acls``), created by the admin once the broker answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from fedstream.messaging.acls import ADMIN_USER, apply_acls, operator_user, platform_bindings, service_roles, service_user
from fedstream.messaging.kafka import security_options
from fedstream.messaging.logins import LOGINS_FILE, KafkaLogin, new_login, read_logins, write_logins
from fedstream.stack.errors import StackError
from fedstream.stack.private_files import write_private
from fedstream.stack.tls import TlsFiles, ensure_tls_files, server_principal

MODES = ("plaintext", "sasl_ssl")
MECHANISM = "SCRAM-SHA-512"
PROTOCOL = "SASL_SSL"
OVERLAY_TEMPLATE = Path(__file__).resolve().parents[3] / "infra" / "kafka" / "sasl_ssl.properties"


def choose_security(setting: str) -> str:
    mode = setting.strip().lower()
    if mode not in MODES:
        raise StackError(f"FEDSTREAM_KAFKA_SECURITY={setting!r}: expected one of {', '.join(MODES)}")
    return mode


# --- pure helpers (unit-tested) ----------------------------------------------------------------


def platform_usernames() -> list[str]:
    return [ADMIN_USER, *(service_user(s) for s in service_roles()), operator_user()]


def super_users() -> str:
    """The admin login and the broker's own certificate (its controller and inter-broker links)."""
    return f"User:{ADMIN_USER};{server_principal()}"


def render_overlay(template: str, *, broker_port: int, internal_port: int, controller_port: int, tls: TlsFiles) -> str:
    return Template(template).substitute(
        broker_port=broker_port,
        internal_port=internal_port,
        controller_port=controller_port,
        keystore=str(tls.server_keystore),
        truststore=str(tls.ca_cert),
        super_users=super_users(),
    )


def scram_format_args(logins: list[KafkaLogin]) -> list[str]:
    """``StorageTool format`` arguments that store these logins as SCRAM credentials."""
    return [arg for login in logins for arg in ("--add-scram", f"{MECHANISM}=[name={login.username},password={login.password}]")]


def admin_client_properties(admin: KafkaLogin, ca_file: Path) -> str:
    """A Java client config for Kafka's command-line tools, logged in as the admin."""
    return "\n".join(
        [
            f"security.protocol={PROTOCOL}",
            f"sasl.mechanism={MECHANISM}",
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{admin.username}" password="{admin.password}";',
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={ca_file}",
            "",
        ]
    )


# --- the state dir's secured broker ------------------------------------------------------------


@dataclass(frozen=True)
class SecuredKafkaFiles:
    """Paths of the secured mode in ``<state>/kafka``."""

    home: Path

    @property
    def tls(self) -> TlsFiles:
        return TlsFiles(self.home / "tls")

    @property
    def logins_path(self) -> Path:
        return self.home / LOGINS_FILE

    @property
    def admin_config(self) -> Path:
        return self.home / "tls" / "admin-client.properties"

    def prepare(self) -> dict[str, KafkaLogin]:
        """Certificates and the platform's logins, made once and kept (idempotent)."""
        tls = ensure_tls_files(self.home / "tls")
        logins, _ = self.add_missing_platform_logins()
        write_private(self.admin_config, admin_client_properties(logins[ADMIN_USER], tls.ca_cert))
        return logins

    def add_missing_platform_logins(self) -> tuple[dict[str, KafkaLogin], list[KafkaLogin]]:
        """All logins, and those made now: a role added to the topic table after the broker was
        formatted gets a login here, and its SCRAM credential from the caller."""
        logins = read_logins(self.logins_path)
        added = [new_login(name) for name in platform_usernames() if name not in logins]
        if added:
            logins.update({login.username: login for login in added})
            write_logins(self.logins_path, logins)
        return logins, added

    @contextmanager
    def private_file(self, text: str) -> Iterator[Path]:
        """A 0600 file in the private tls/ directory for the span of one tool run, then removed."""
        path = self.home / "tls" / f".tool-{secrets.token_hex(6)}.properties"
        write_private(path, text)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def admin_login(self) -> KafkaLogin:
        login = read_logins(self.logins_path).get(ADMIN_USER)
        if login is None:
            raise StackError(f"no admin login in {self.logins_path}: the secured broker was never prepared")
        return login

    def client_options(self, login: KafkaLogin) -> dict[str, Any]:
        return security_options(
            PROTOCOL, mechanism=MECHANISM, username=login.username, password=login.password, ca_file=str(self.tls.ca_cert)
        )

    def endpoint_fields(self) -> dict[str, str]:
        """What the endpoints file records so clients connect securely (no secret: logins stay in their 0600 file)."""
        return {
            "kafka_security_protocol": PROTOCOL,
            "kafka_sasl_mechanism": MECHANISM,
            "kafka_ca_file": str(self.tls.ca_cert),
            "kafka_logins_file": str(self.logins_path),
            "kafka_local_user": ADMIN_USER,
        }


async def install_platform_acls(bootstrap: str, files: SecuredKafkaFiles) -> None:
    """Every service's and the operator's ACLs, as the admin (idempotent: runs on every `up`)."""
    await with_admin(bootstrap, files, lambda admin: apply_acls(admin, platform_bindings()))


async def with_admin(bootstrap: str, files: SecuredKafkaFiles, action) -> None:  # noqa: ANN001 - async callable
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="fedstream-stack", **files.client_options(files.admin_login())
    )
    await admin.start()
    try:
        await action(admin)
    finally:
        await admin.close()


def service_login_env(service: str, env: dict[str, str]) -> dict[str, str]:
    """The FEDSTREAM_KAFKA_USERNAME/PASSWORD a supervised service runs with on a secured local stack.

    Empty when the stack is not secured, or when the environment already names a login (production)."""
    import json

    from fedstream.settings import ENDPOINTS_FILE, default_state_dir

    if env.get("FEDSTREAM_KAFKA_USERNAME"):
        return {}
    state_dir = Path(env.get("FEDSTREAM_STATE_DIR") or default_state_dir())
    try:
        recorded = json.loads((state_dir / ENDPOINTS_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    logins_file = recorded.get("kafka_logins_file")
    login = read_logins(Path(logins_file)).get(service_user(service)) if logins_file else None
    if login is None:
        return {}
    return {"FEDSTREAM_KAFKA_USERNAME": login.username, "FEDSTREAM_KAFKA_PASSWORD": login.password}


