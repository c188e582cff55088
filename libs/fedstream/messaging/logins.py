"""SCRAM logins of a secured local stack, kept in one 0600 JSON file in the state dir.

``fedstream stack up`` with ``FEDSTREAM_KAFKA_SECURITY=sasl_ssl`` generates them (admin, one per service,
the operator, participants as they are added); the supervisor hands each service its own, and the
settings fall back to the admin login for local tools (CLI, simulation, tests) that were given none.
Production never reads this file: it sets ``FEDSTREAM_KAFKA_USERNAME`` / ``FEDSTREAM_KAFKA_PASSWORD``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

LOGINS_FILE = "kafka-logins.json"


@dataclass(frozen=True)
class KafkaLogin:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password into a log
        return f"KafkaLogin(username={self.username!r}, password='***')"


def new_login(username: str) -> KafkaLogin:
    # URL-safe alphabet: the password goes unquoted into Kafka's `SCRAM-SHA-512=[password=…]` syntax.
    return KafkaLogin(username, secrets.token_urlsafe(24))


def read_logins(path: Path) -> dict[str, KafkaLogin]:
    """Logins by username ({} if the file does not exist)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {name: KafkaLogin(**entry) for name, entry in data.items()}


def write_logins(path: Path, logins: dict[str, KafkaLogin]) -> None:
    """Atomically, and created 0600 so no other user ever reads a password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({name: asdict(login) for name, login in sorted(logins.items())}, f, indent=2)
    tmp.replace(path)
