"""What every embedded server has in common: reuse it if alive, else prepare, start and wait for it."""

from __future__ import annotations

import logging
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from fedstream.stack.process import ProcessRecord, RunDir, stop_process

log = logging.getLogger("fedstream.stack")


@dataclass(frozen=True)
class ComponentStatus:
    """One line of `fedstream stack status`."""

    name: str  # "kafka", "postgres", "redis"
    kind: str  # "apache-kafka 4.1.1 (KRaft)", "tansu 0.6.0 (in-memory)", "postgresql 18.6", "redis 6.2.14"
    address: str | None  # what clients use: bootstrap servers or URL
    pid: int | None  # None for external servers and for ones not running
    running: bool  # ours: the recorded process is alive; external: its port accepts connections
    started_by_us: bool  # False: an external server given in the settings, never started or stopped here
    log: str | None = None

    @property
    def origin(self) -> str:
        return "started by us" if self.started_by_us else "external"


class Component(ABC):
    """A server that `LocalStack` starts detached, remembers in ``<state>/run/<name>.json`` and stops.

    Subclasses say how to prepare (one-time setup), how to start, how to know it is ready and what
    address clients use; the lifecycle (reuse, restart, record, stop) is here, once.
    """

    name: ClassVar[str]
    # The signal that means "shut down cleanly, now" (PostgreSQL wants SIGINT: SIGTERM waits for clients).
    stop_signal: ClassVar[int] = signal.SIGTERM
    stop_timeout_s: ClassVar[float] = 30.0

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.run_dir = RunDir(state_dir / "run")

    @property
    def home(self) -> Path:
        """This component's own directory in the state dir (config, data, logs)."""
        return self.state_dir / self.name

    # --- what subclasses provide -------------------------------------------------------------

    @abstractmethod
    def kind(self) -> str:
        """Human description of what this component runs, e.g. "redis 6.2.14"."""

    @abstractmethod
    async def prepare(self) -> None:
        """One-time, idempotent setup before a start (download jars, format, initdb)."""

    @abstractmethod
    async def start(self, previous: ProcessRecord | None) -> ProcessRecord:
        """Spawn the server detached (not waiting for it) and return its record; reuse previous ports."""

    @abstractmethod
    async def wait_ready(self, record: ProcessRecord) -> None:
        """Return once clients can use the server; StackError if it dies or the deadline passes."""

    async def after_ready(self, record: ProcessRecord) -> None:
        """Setup that needs the running server (e.g. create the database); runs on every `up`, so idempotent."""

    def after_stop(self, record: ProcessRecord) -> None:
        """Clean-up once the process has exited cleanly."""

    # --- the lifecycle -----------------------------------------------------------------------

    def recorded(self) -> ProcessRecord | None:
        return self.run_dir.read(self.name)

    async def ensure_running(self) -> ProcessRecord:
        """Reuse the recorded server if it is alive, otherwise (re)start it; wait until it is ready."""
        previous = self.recorded()
        if previous is not None and previous.is_alive():
            await self.wait_ready(previous)
            await self.after_ready(previous)
            return previous
        await self.prepare()
        log.info("%s: starting %s", self.name, self.kind())
        record = await self.start(previous)
        self.run_dir.write(self.name, record)
        await self.wait_ready(record)
        await self.after_ready(record)
        log.info("%s: ready at %s (pid %d)", self.name, record.address, record.pid)
        return record

    def stop(self) -> bool:
        """Stop the recorded server if it is alive; True if there was one to stop.

        The record stays: the next `up` starts the server on the same ports, so addresses that
        clients and config files hold remain valid. Only a purge forgets it.
        """
        record = self.recorded()
        if record is None or not record.is_alive():
            return False
        log.info("%s: stopping pid %d", self.name, record.pid)
        stop_process(record, sig=self.stop_signal, timeout_s=self.stop_timeout_s)
        self.after_stop(record)
        return True

    def status(self) -> ComponentStatus:
        record = self.recorded()
        if record is None:
            return ComponentStatus(
                name=self.name, kind=self.kind(), address=None, pid=None, running=False, started_by_us=True
            )
        alive = record.is_alive()
        return ComponentStatus(
            name=self.name,
            kind=record.kind,
            address=record.address,
            pid=record.pid if alive else None,
            running=alive,
            started_by_us=True,
            log=record.log,
        )
