"""The one async composition shape every service shares: connect, consume, relay, tick, drain.

A service's ``bootstrap.py`` builds its dependencies and hands a ``ServiceDefinition`` to
``run_service``. Nothing connects at import time; SIGTERM/SIGINT drain the batch in flight, publish
the outbox and close cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from fedstream.messaging.consumer import BatchProcessor, Dispatcher, EventConsumer, Handler, MalformedHook, Prefetch
from fedstream.messaging.fair import FairEventConsumer, LaneOf
from fedstream.messaging.kafka import ensure_topics, make_consumer, make_producer
from fedstream.messaging.outbox import OutboxRelay
from fedstream.messaging.transaction import PostgresTransactions
from fedstream.observability.metrics import setup_metrics
from fedstream.observability.settings import ObservabilitySettings
from fedstream.observability.tracing import setup_tracing
from fedstream.settings import SUPERVISOR_PID_ENV, Endpoints
from fedstream.storage.postgres import create_pool, wait_until_migrated
from schemas.base import Event
from schemas.topics import topics_consumed_by

log = logging.getLogger(__name__)

Tick = Callable[[PostgresTransactions[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Timer:
    """Work driven by the clock (deadlines), run every ``interval_s`` inside its own transactions."""

    interval_s: float
    tick: Tick


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    handlers: Mapping[type[Event], Handler]
    repo_factory: Callable[[asyncpg.Connection], Any]
    timers: tuple[Timer, ...] = ()
    prefetch: Prefetch | None = None
    on_malformed: MalformedHook | None = None  # a service's answer to records that do not decode
    # Serve records fairly by lane (e.g. per sender), so one sender's flood does not delay the others.
    lane_of: LaneOf | None = None
    group_id: str | None = None
    instance: str = field(default="0")


class ServiceCrashed(RuntimeError):
    """A service's consumer, relay or timer ended with an error."""


class RunningService:
    """Handles to a started service, for tests that drive or stop it in-process."""

    def __init__(self, definition: ServiceDefinition, endpoints: Endpoints) -> None:
        self.definition, self.endpoints = definition, endpoints
        self.stopped = asyncio.Event()
        self._consumer_loop: EventConsumer | FairEventConsumer | None = None

    def stop(self) -> None:
        if self._consumer_loop:
            self._consumer_loop.stop()
        self.stopped.set()

    async def run(self) -> None:
        d = self.definition
        # The application login (owns nothing, cannot bypass RLS); the owner migrated before we started.
        await wait_until_migrated(self.endpoints.app_database_url)
        await ensure_topics(self.endpoints)
        pool = await create_pool(self.endpoints.app_database_url, max_size=4, application_name=f"fedstream-{d.name}-{d.instance}")
        producer = make_producer(self.endpoints, f"fedstream-{d.name}-{d.instance}")
        consumer = make_consumer(
            self.endpoints, d.group_id or f"fedstream-{d.name}", topics_consumed_by(d.name), f"fedstream-{d.name}-{d.instance}"
        )
        transactions = PostgresTransactions(pool, d.name, d.repo_factory)
        relay = OutboxRelay(pool, producer, d.name)
        await producer.start()
        await consumer.start()
        processor = BatchProcessor(transactions, Dispatcher(d.handlers), prefetch=d.prefetch, on_malformed=d.on_malformed)
        self._consumer_loop = (
            EventConsumer(consumer, processor, relay.wake) if d.lane_of is None
            else FairEventConsumer(consumer, processor, d.lane_of, relay.wake)
        )
        if self.stopped.is_set():
            self._consumer_loop.stop()
        tasks = [asyncio.create_task(self._consumer_loop.run(), name=f"{d.name}-consumer")]
        relay_task = asyncio.create_task(relay.run(), name=f"{d.name}-relay")
        tasks += [asyncio.create_task(_tick_forever(t, transactions, relay.wake), name=f"{d.name}-timer") for t in d.timers]
        log.info("%s started: consuming %s", d.name, ", ".join(t.name for t in topics_consumed_by(d.name)))
        stop_requested = asyncio.create_task(self.stopped.wait())
        try:
            done, _ = await asyncio.wait([stop_requested, *tasks, relay_task], return_when=asyncio.FIRST_COMPLETED)
            crashed = [t for t in done if t is not stop_requested and t.exception() is not None]
            if crashed:  # let the supervisor restart us rather than limp on without a consumer
                raise ServiceCrashed(f"{crashed[0].get_name()} failed") from crashed[0].exception()
        finally:
            self.stop()
            stop_requested.cancel()
            await _drain(tasks)
            await relay.drain_and_stop()
            # Each step is bounded: with the broker or database gone, leaving cleanly must not hang.
            for step in (relay_task, consumer.stop(), producer.stop(), pool.close()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(step, 10)
            log.info("%s stopped", d.name)


async def _tick_forever(timer: Timer, transactions: PostgresTransactions[Any], after: Callable[[], None]) -> None:
    while True:
        try:
            await timer.tick(transactions)
            after()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("timer: %s", exc)
        except Exception:
            log.exception("timer failed")
        await asyncio.sleep(timer.interval_s)


async def _drain(tasks: list[asyncio.Task[None]]) -> None:
    """The consumer finishes its batch (it was told to stop); timers are cancelled between ticks."""
    consumer, *others = tasks
    for t in others:
        t.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(consumer, 30)
    for t in others:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t


async def stop_when_orphaned(
    parent_pid: int, stop: Callable[[], None], getppid: Callable[[], int] = os.getppid, interval_s: float = 2.0
) -> None:
    """Stop the service once its supervisor is gone. A SIGKILLed supervisor (or test run) cannot stop its
    children, and orphaned services would keep consuming and burning CPU with nobody watching them."""
    while getppid() == parent_pid:
        await asyncio.sleep(interval_s)
    log.warning("supervisor %d is gone: stopping", parent_pid)
    stop()


def serve(definition: ServiceDefinition, endpoints: Endpoints) -> None:
    """Process entry point: run until SIGTERM/SIGINT; traces and metrics as the settings say."""
    logging.basicConfig(
        level=os.environ.get("FEDSTREAM_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {definition.name} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)  # its DEBUG output drowns ours

    async def main() -> None:
        service = RunningService(definition, endpoints)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        supervisor = os.environ.get(SUPERVISOR_PID_ENV)
        watchdog = asyncio.create_task(stop_when_orphaned(int(supervisor), service.stop)) if supervisor else None
        try:
            await service.run()
        finally:
            if watchdog is not None:
                watchdog.cancel()

    observability = ObservabilitySettings()
    tracer_provider = setup_tracing(definition.name, observability)
    setup_metrics(definition.name, observability)
    try:
        asyncio.run(main())
    finally:
        if tracer_provider is not None:
            tracer_provider.shutdown()  # flush the last spans
