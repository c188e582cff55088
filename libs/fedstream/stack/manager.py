"""`LocalStack`: start, reuse, inspect and stop the embedded Kafka + PostgreSQL + Redis of a state dir.

The CLI (`fedstream stack up|down|status`) and the pytest session fixture both call this. Each
component is started at most once per state dir and outlives the process that started it; the
addresses go to ``<state>/endpoints.json``, where `StackSettings.resolved()` finds them.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import shutil
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fedstream.messaging.logins import KafkaLogin
from fedstream.settings import StackSettings, write_endpoints
from fedstream.stack.component import Component, ComponentStatus
from fedstream.stack.errors import StackError
from fedstream.stack.kafka import ApacheKafka, find_java
from fedstream.stack.kafka_security import choose_security
from fedstream.stack.postgres import PostgreSQL
from fedstream.stack.process import tcp_reachable
from fedstream.stack.redis import Redis
from fedstream.stack.tansu import Tansu

log = logging.getLogger("fedstream.stack")

BROKERS = ("auto", "kafka", "tansu")
# Everything `down(purge=True)` deletes: the components' homes, their records and the blobs.
DATA_DIRS = ("kafka", "tansu", "postgres", "redis", "run", "blobs")
T = TypeVar("T")


def choose_broker(setting: str, java: str | None) -> str:
    """ "kafka" or "tansu" for FEDSTREAM_BROKER=auto|kafka|tansu and the Java found (or not)."""
    choice = setting.strip().lower()
    if choice not in BROKERS:
        raise StackError(f"FEDSTREAM_BROKER={setting!r}: expected one of {', '.join(BROKERS)}")
    if choice == "kafka" and java is None:
        raise StackError("FEDSTREAM_BROKER=kafka but no `java` was found (PATH or JAVA_HOME); Java 17+ is needed")
    if choice == "auto":
        return "kafka" if java else "tansu"
    return choice


def external_host_port(name: str, address: str) -> tuple[str, int] | None:
    """Where to knock to see whether an external server is up (None if the address is not TCP)."""
    if name == "kafka":
        first = address.split(",")[0].strip().split("://")[-1]
        host, _, port = first.rpartition(":")
        return (host, int(port)) if host and port.isdigit() else None
    parts = urlsplit(address)
    default_port = {"postgres": 5432, "redis": 6379}[name]
    return (parts.hostname, parts.port or default_port) if parts.hostname else None


def local_endpoints(
    settings: StackSettings, state_dir: Path, started: dict[str, str], kafka_flavour: str
) -> dict[str, str]:
    """The endpoints file: explicit settings win, the rest are the servers we started."""
    return {
        "kafka_bootstrap_servers": settings.kafka_bootstrap_servers or started["kafka"],
        "database_url": settings.database_url or started["postgres"],
        "redis_url": settings.redis_url or started["redis"],
        "blob_store_url": settings.blob_store_url or (state_dir / "blobs").as_uri(),
        "kafka_flavour": kafka_flavour,
    }


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, even from inside a running loop (an async pytest fixture)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_a_loop = False
    else:
        in_a_loop = True
    if not in_a_loop:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class LocalStack:
    """The embedded stack of one state dir. Explicit addresses in the settings are used, never started."""

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        # Absolute: the path ends up in server configs and records read from other directories.
        self.state_dir = self.settings.state_dir.expanduser().resolve()

    # --- public API --------------------------------------------------------------------------

    def up(self) -> dict[str, str]:
        """Start what is not running (reusing what is), wait until all answer, write and return the endpoints."""
        return run_sync(self.up_async())

    def down(self, purge: bool = False) -> list[str]:
        """Stop the servers this state dir started (returns their names); purge=True also deletes their data."""
        if not self.state_dir.exists():
            return []
        with self._locked():
            components = self._local_components(broker=None)
            # In parallel: each waits for its own clean shutdown (Kafka takes seconds).
            with ThreadPoolExecutor(max_workers=len(components)) as pool:
                was_running = list(pool.map(lambda c: c.stop(), components))
            stopped = [c.name for c, ran in zip(components, was_running, strict=True) if ran]
            self.settings.endpoints_path().unlink(missing_ok=True)
            if purge:
                for name in DATA_DIRS:
                    shutil.rmtree(self.state_dir / name, ignore_errors=True)
        return stopped

    def status(self) -> list[ComponentStatus]:
        externals = self._externals()
        statuses = []
        for component in self._local_components(broker=None):
            if component.name in externals:
                statuses.append(self._external_status(component.name, externals[component.name]))
            else:
                statuses.append(component.status())
        return statuses

    async def up_async(self) -> dict[str, str]:
        """`up` for async callers. The components start concurrently: on two cores the JVM's start
        dominates, and PostgreSQL's initdb and Redis fit in its shadow."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        externals = self._externals()
        flavour = "kafka" if "kafka" in externals else self._wanted_broker(warn=True)
        wanted = [c for c in self._local_components(broker=flavour) if c.name not in externals]
        started_at = time.monotonic()
        with self._locked():
            if "kafka" not in externals:
                await asyncio.to_thread(self._stop_other_broker, flavour)
            results = await asyncio.gather(*(c.ensure_running() for c in wanted), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise _combined(failures)
            addresses = dict(zip((c.name for c in wanted), (r.address for r in results), strict=True))
            if self.settings.blob_store_url is None:
                (self.state_dir / "blobs").mkdir(exist_ok=True)
            endpoints = local_endpoints(self.settings, self.state_dir, {**externals, **addresses}, flavour)
            for component in wanted:  # how to connect securely (the database's logins; a secured Kafka, Redis)
                if isinstance(component, ApacheKafka | Redis | PostgreSQL):
                    endpoints.update(component.endpoint_fields())
            write_endpoints(self.settings.endpoints_path(), endpoints)
        log.info("stack up in %.1f s (%s)", time.monotonic() - started_at, self.state_dir)
        return endpoints

    def add_kafka_participant(self, participant_id: str) -> KafkaLogin:
        """A participant's own SCRAM login and ACLs on this state dir's secured broker (sasl_ssl mode)."""
        broker = self._broker("kafka")
        record = broker.recorded()
        if record is None or not record.is_alive():
            raise StackError("the local Apache Kafka is not running: `fedstream stack up` first")
        return run_sync(broker.add_participant(record, participant_id))

    # --- helpers -----------------------------------------------------------------------------

    def _externals(self) -> dict[str, str]:
        given = {
            "kafka": self.settings.kafka_bootstrap_servers,
            "postgres": self.settings.database_url,
            "redis": self.settings.redis_url,
        }
        return {name: address for name, address in given.items() if address}

    def _local_components(self, broker: str | None) -> list[Component]:
        """broker=None: whichever flavour the state dir records (for status and down)."""
        secured = choose_security(self.settings.kafka_security) == "sasl_ssl"
        return [self._broker(broker), PostgreSQL(self.state_dir), Redis(self.state_dir, secured=secured)]

    def _stop_other_broker(self, wanted: str) -> None:
        """Kafka and Tansu share the broker's record and port: switching flavour stops the other first."""
        current = self._broker(None)
        if current.flavour != wanted and current.stop():
            log.info("kafka: stopped %s to start %s instead", current.kind(), wanted)

    def _broker(self, flavour: str | None) -> ApacheKafka | Tansu:
        starting = flavour is not None  # None: status/down of whatever runs, whatever the settings say now
        if flavour is None:
            record = Tansu(self.state_dir).recorded()
            recorded_flavour = record.extra.get("flavour") if record else None
            flavour = recorded_flavour or self._wanted_broker(warn=False)
        security = choose_security(self.settings.kafka_security)
        if flavour == "tansu":
            if starting and security != "plaintext":
                raise StackError("FEDSTREAM_KAFKA_SECURITY=sasl_ssl needs Apache Kafka (Tansu has no SASL/ACLs): install Java 17+")
            return Tansu(self.state_dir)
        return ApacheKafka(self.state_dir, find_java(), security=security)

    def _wanted_broker(self, *, warn: bool) -> str:
        java = find_java()
        flavour = choose_broker(self.settings.broker, java)
        if warn and java is None and flavour == "tansu" and self.settings.broker == "auto":
            log.warning("no `java` on PATH or in JAVA_HOME (Java 17+ runs Apache Kafka): using Tansu instead")
        return flavour

    @staticmethod
    def _external_status(name: str, address: str) -> ComponentStatus:
        target = external_host_port(name, address)
        running = bool(target) and tcp_reachable(*target)
        return ComponentStatus(name, "external", address, None, running, started_by_us=False)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up`/`down` at a time per state dir (parallel test workers all call `up`)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "stack.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _combined(failures: list[BaseException]) -> BaseException:
    """One StackError naming every component that failed (an unexpected exception passes through)."""
    unexpected = [f for f in failures if not isinstance(f, StackError)]
    if unexpected:
        return unexpected[0]
    if len(failures) == 1:
        return failures[0]
    return StackError("\n\n".join(str(f) for f in failures))
