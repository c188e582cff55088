"""PostgreSQL access: a pool per process, and the migrations the owner applies before any service starts.

Migrations are plain SQL files in ``infra/migrations`` applied in name order, once each, under an
advisory lock so two migrators starting together do not race. They run as the owner (the login of
``Endpoints.database_url``); the services and the admin API connect as application logins that own
nothing, so they only wait until the schema is there (``wait_until_migrated``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

MIGRATIONS_DIR = Path(__file__).resolve().parents[3] / "infra" / "migrations"
_LOCK_KEY = 0x6665647374726D  # "fedstrm": one advisory lock for all migrators
MIGRATED_TIMEOUT_S = 120.0
SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)

log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come and go as Python objects, so repositories never hand-serialise.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(database_url: str) -> asyncpg.Connection:
    """One connection with the same codecs the pools use (for CLI commands and tools)."""
    conn = await asyncpg.connect(database_url)
    await _init_connection(conn)
    return conn


async def create_pool(
    database_url: str, min_size: int = 1, max_size: int = 4, application_name: str | None = None
) -> asyncpg.Pool:
    """``application_name`` names the process in pg_stat_activity (which login each process uses is visible)."""
    server_settings = {"application_name": application_name} if application_name else None
    return await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60,
        server_settings=server_settings,
    )


async def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        # Checked first: CREATE TABLE IF NOT EXISTS needs CREATE on the schema even when the table exists,
        # and a caller with nothing left to apply (not the owner) has no such right.
        if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
            await conn.execute(
                "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for path in sorted(directory.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", path.name)
            applied.append(path.name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        await conn.close()


async def pending_migrations(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """The migrations this code knows that the database has not recorded (all of them on an empty one)."""
    known = sorted(p.name for p in directory.glob("*.sql"))
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NULL"):
        return known
    done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
    return [name for name in known if name not in done]


async def wait_until_migrated(
    database_url: str, directory: Path = MIGRATIONS_DIR, timeout_s: float = MIGRATED_TIMEOUT_S
) -> None:
    """What a service does at start instead of migrating: wait for the owner's migrations (a compose
    `migrate` job may still be running), and say so loudly if this login could bypass row-level security."""
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"):
            log.warning("connected to PostgreSQL as %s, which bypasses row-level security: give this process an "
                        "application login (FEDSTREAM_APP_DATABASE_URL, README \"Least privilege\")",
                        await conn.fetchval("SELECT current_user"))
        deadline = time.monotonic() + timeout_s
        while pending := await pending_migrations(conn, directory):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the database lacks migrations {', '.join(pending)}: the owner applies them "
                                   "(`fedstream stack migrate`, or `fedstream stack up` for the local stack)")
            await asyncio.sleep(0.5)  # polling the owner's progress, bounded by the deadline above
    finally:
        await conn.close()


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677), computed here so that the
    password itself never reaches the server (nor its statement log). ASCII passwords only: for those,
    SASLprep (which the server applies) changes nothing."""
    if not password.isascii():
        raise ValueError("login passwords must be ASCII (the server would SASLprep other ones)")
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def set_login_passwords(owner_url: str, login_urls: Iterable[str]) -> list[str]:
    """As the owner, give each application login the password its URL carries; returns the logins set.

    A login without a password in its URL is left alone (a DBA manages it)."""
    logins = {}
    for url in login_urls:
        parts = urlsplit(url)
        if parts.username and parts.password is not None:
            logins[unquote(parts.username)] = unquote(parts.password)
    if not logins:
        return []
    conn = await asyncpg.connect(owner_url)
    try:
        for user, password in logins.items():
            # format() quotes server-side; a utility statement takes no bind parameters.
            statement = await conn.fetchval("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
                                            user, scram_verifier(password))
            await conn.execute(statement)
    finally:
        await conn.close()
    return list(logins)


async def prepare_database(owner_url: str, login_urls: Iterable[str] = ()) -> list[str]:
    """The owner's part before any service starts: migrate, then set the application logins' passwords
    (``Endpoints.login_urls``). Returns the migrations applied now."""
    applied = await apply_migrations(owner_url)
    await set_login_passwords(owner_url, login_urls)
    return applied
