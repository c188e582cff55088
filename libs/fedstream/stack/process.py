"""Process plumbing shared by the components: free ports, detached servers, pid records, readiness.

A server is identified by its pid *and* its start time, both kept in ``<state>/run/<name>.json``
(with a plain ``<name>.pid`` beside it for humans and scripts): after a reboot or a long pause the
pid may belong to another process, and the start time tells them apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from fedstream.stack.errors import StackError

LOOPBACK = "127.0.0.1"
# Tolerance when comparing a recorded start time with psutil's (both derive from /proc in ticks).
_START_TIME_TOLERANCE_S = 0.5


# --- ports -------------------------------------------------------------------------------------


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that nothing listens on right now: the kernel's pick, not a guess (it can still be
    taken before the server binds it; the server then fails to start and says so in its log)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether a server could listen on ``port`` now. SO_REUSEADDR as the servers set it: connections
    of a stopped server lingering in TIME_WAIT must not make us move it to another port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def reuse_or_allocate(recorded: int | None, host: str = LOOPBACK) -> int:
    """Keep a component's port across restarts so clients' addresses stay valid; move only if taken."""
    if recorded and port_is_free(recorded, host):
        return recorded
    return free_port(host)


def tcp_reachable(host: str, port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


# --- process records ---------------------------------------------------------------------------


@dataclass
class ProcessRecord:
    """What ``up`` remembers about a server it started, so later commands can find it again."""

    pid: int
    create_time: float
    kind: str
    address: str
    log: str
    # Component-specific extras (ports, flavour, paths) that a restart wants back.
    extra: dict = field(default_factory=dict)

    def is_alive(self) -> bool:
        return process_matches(self.pid, self.create_time)


class RunDir:
    """``<state>/run``: one ``<name>.json`` record and one ``<name>.pid`` per started server."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, name: str) -> ProcessRecord | None:
        try:
            data = json.loads((self.path / f"{name}.json").read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError) as exc:
            raise StackError(f"unreadable process record {self.path / f'{name}.json'}: {exc}") from exc
        return ProcessRecord(**data)

    def write(self, name: str, record: ProcessRecord) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.path / f"{name}.json", json.dumps(asdict(record), indent=2))
        _atomic_write(self.path / f"{name}.pid", f"{record.pid}\n")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def process_matches(pid: int, create_time: float) -> bool:
    """True if ``pid`` is alive and is the very process recorded (not a later one reusing the pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(proc.create_time() - create_time) < _START_TIME_TOLERANCE_S
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


# --- starting and stopping ---------------------------------------------------------------------

# `sh` starts the server in the background and exits at once, printing the server's pid. The server
# is thereby re-parented away from us (it outlives `fedstream stack up`, and this process never has
# to reap it), and `start_new_session` puts it in its own session so a Ctrl-C in the terminal that
# ran `up` does not reach it. Its stdout goes to the log file we pass as stderr.
_DETACH = '"$@" </dev/null >&2 & echo $!'


def spawn_detached(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> tuple[int, float]:
    """Start ``argv`` detached from this process; returns (pid, create_time)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        launcher = subprocess.run(
            ["/bin/sh", "-c", _DETACH, "sh", *argv],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=cwd,
            start_new_session=True,
            check=False,
            **_as_user(user),
        )
    pid_text = launcher.stdout.decode().strip()
    if launcher.returncode != 0 or not pid_text.isdigit():
        raise StackError(f"could not launch {argv[0]} (exit {launcher.returncode}): {tail(log_path)}")
    pid = int(pid_text)
    try:
        return pid, psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        raise StackError(f"{Path(argv[0]).name} exited right after starting:\n{tail(log_path)}") from None


def _as_user(user: str | None) -> dict:
    """subprocess arguments that drop root to ``user`` (and its group, without root's groups)."""
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def stop_process(record: ProcessRecord, *, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
    """Ask the server to shut down cleanly, wait for it, and kill it only if it will not go."""
    if not record.is_alive():
        return
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        return
    if _wait_gone(record, timeout_s):
        return
    try:
        os.kill(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not _wait_gone(record, 5.0):
        raise StackError(f"pid {record.pid} ({record.kind}) survived SIGKILL")


def _wait_gone(record: ProcessRecord, timeout_s: float) -> bool:
    """Poll until the process is gone. Not psutil's wait(): the server is not our child, and init
    may leave it a zombie for a while, which psutil would still count as existing."""
    deadline = time.monotonic() + timeout_s
    while record.is_alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


# --- one-shot tools ----------------------------------------------------------------------------


async def run_tool(
    argv: Sequence[str],
    *,
    what: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    timeout_s: float = 300.0,
) -> str:
    """Run a setup command (mvn, StorageTool, initdb) to completion; StackError with its output tail."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            **_as_user(user),
        )
    except OSError as exc:
        raise StackError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise StackError(f"{what}: {argv[0]} did not finish within {timeout_s:.0f} s") from None
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise StackError(f"{what} failed (exit {proc.returncode}):\n{tail_text(text)}")
    return text


# --- readiness ---------------------------------------------------------------------------------


async def wait_until_ready(
    probe: Callable[[], Awaitable[object]],
    *,
    name: str,
    record: ProcessRecord,
    timeout_s: float,
    interval_s: float = 0.1,
) -> None:
    """Retry ``probe`` until it succeeds; fail fast if the server dies, fail late at the deadline.

    A probe that raises or returns False means "not yet"; the last failure goes into the error.
    """
    deadline = time.monotonic() + timeout_s
    last_failure: object = "no answer"
    while True:
        if not record.is_alive():
            raise StackError(f"{name} exited while starting; {logs_tail(record)}")
        try:
            if await probe() is not False:
                return
        except Exception as exc:  # noqa: BLE001 - any failure of a readiness probe means "not ready yet"
            last_failure = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise StackError(
                f"{name} (pid {record.pid}) not ready after {timeout_s:.0f} s ({last_failure}); {logs_tail(record)}"
            )
        await asyncio.sleep(interval_s)


async def wait_for_port(port: int, *, name: str, record: ProcessRecord, timeout_s: float) -> None:
    """Cheap first stage of readiness: the listener is open (no client library, no log noise)."""

    async def probe() -> bool:
        return tcp_reachable(LOOPBACK, port, timeout_s=0.2)

    await wait_until_ready(probe, name=name, record=record, timeout_s=timeout_s)


# --- logs --------------------------------------------------------------------------------------


def logs_tail(record: ProcessRecord) -> str:
    """The end of the server's log, and of its console output where that is a separate file (a JVM
    that fails before its logging starts says why on the console only)."""
    text = f"the end of {record.log}:\n{tail(Path(record.log))}"
    console = record.extra.get("console_log")
    if console and Path(console).is_file() and Path(console).stat().st_size:
        text += f"\nthe end of {console}:\n{tail(Path(console))}"
    return text


def tail(path: Path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return tail_text(f.read().decode(errors="replace"), lines)
    except OSError:
        return f"(no log at {path})"


def tail_text(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])
