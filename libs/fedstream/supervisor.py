"""Runs the six services as separate, supervised OS processes (restarted with backoff if they die).

Used by ``fedstream services run``, the demo, and the integration tests (which also kill and restart
single services to prove nothing is lost).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fedstream.settings import SUPERVISOR_PID_ENV
from fedstream.stack.kafka_security import service_login_env
from fedstream.stack.process import free_port
from schemas.topics import KEY_CUSTODY, SERVICES


def module_of(service: str) -> str:
    return f"services.{service.replace('-', '_')}"


@dataclass
class Supervised:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    restarts: int = 0
    wanted: bool = True


@dataclass
class Supervisor:
    log_dir: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    # the six event services, plus the HE key custodian (its own process: it holds secret keys)
    services: tuple[str, ...] = (*SERVICES, KEY_CUSTODY)
    restart_backoff_s: float = 1.0
    # Give each service its own /metrics port (needed when all six share one host).
    metrics: bool = False
    metrics_ports: dict[str, int] = field(default_factory=dict)
    children: dict[str, Supervised] = field(default_factory=dict)
    _watcher: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.metrics:
            self.metrics_ports = {name: free_port() for name in self.services}
        for name in self.services:
            self.start_one(name)
        self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._watcher.start()

    def start_one(self, name: str) -> Supervised:
        log_path = self.log_dir / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        env = dict(self.env)
        if name in self.metrics_ports:
            env["FEDSTREAM_METRICS_PORT"] = str(self.metrics_ports[name])
        env.update(service_login_env(name, env))  # its own Kafka login on a secured local stack
        env[SUPERVISOR_PID_ENV] = str(os.getpid())  # so the child stops if we die without stopping it
        process = subprocess.Popen(
            [sys.executable, "-m", module_of(name)], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        previous = self.children.get(name)
        child = Supervised(name, process, log_path, restarts=previous.restarts + 1 if previous else 0)
        self.children[name] = child
        return child

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Fault injection: the watcher restarts it after the backoff."""
        self.children[name].process.send_signal(sig)

    def stop(self, timeout: float = 30) -> None:
        self._stopping.set()
        for child in self.children.values():
            child.wanted = False
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()

    def alive(self) -> dict[str, bool]:
        return {n: c.process.poll() is None for n, c in self.children.items()}

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for name, child in list(self.children.items()):
                if child.wanted and child.process.poll() is not None and not self._stopping.is_set():
                    time.sleep(self.restart_backoff_s)
                    if not self._stopping.is_set() and self.children[name] is child and child.wanted:
                        self.start_one(name)
