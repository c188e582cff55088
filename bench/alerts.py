"""`python -m bench.alerts`: what the alert stream processor costs validation's consumer.

Validation now consumes every admission and privacy charge. This drives its real batch processor (inbox,
handlers, outbox, one PostgreSQL transaction per batch of 500, as the Kafka loop does) with a stream of
accepted + charged updates from many participants, and reports events/s — median of several runs —
for the merged handler table, next to the same stream with the monitor left out (every event then only
claims its inbox row). Kafka is not involved: this isolates the processor's own database work.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import timedelta
from uuid import uuid4

from bench.actors import federation_spec
from fedstream.cli.stack_cmd import bring_up
from fedstream.messaging.codec import Record, encode
from fedstream.messaging.consumer import BatchProcessor, Dispatcher
from fedstream.messaging.transaction import PostgresTransactions
from fedstream.settings import StackSettings
from fedstream.storage.blobs import InMemoryBlobStore
from fedstream.storage.postgres import create_pool
from services.validation.adapters import PostgresValidationStore
from services.validation.bootstrap import merge
from services.validation.handlers import ValidationHandlers
from services.validation.monitor import HealthMonitor
from schemas import events as ev
from schemas.base import BlobRef, utcnow
from schemas.topics import topic_for

BATCH = 500


def stream(federation_id: str, participants: int, rounds: int) -> list[Record]:
    spec = federation_spec(federation_id, participants, 10, rounds=rounds, quorum=participants)
    blob = BlobRef(uri="memory://bench", sha256="0" * 64, size=1)
    t0 = utcnow()
    events: list[ev.Event] = [ev.FederationCreated(source="registry", federation_id=federation_id, spec=spec, params=(),
                                                   initial_model=blob)]
    for r in range(1, rounds + 1):
        for p in spec.participants:
            update_id, at = uuid4(), t0 + timedelta(seconds=r)
            common = {"federation_id": federation_id, "update_id": update_id, "participant_id": p.participant_id,
                      "round": r, "update": blob, "num_examples": 10}
            events.append(ev.UpdateAccepted(source="ingestion", train_loss=0.5, time=at, **common))
            events.append(ev.PrivacyCharged(source="privacy-accounting", time=at + timedelta(seconds=1), **common))
    return [encode(e, topic_for(type(e)).name) for e in events]


async def events_per_s(database_url: str, with_monitor: bool, participants: int, rounds: int) -> float:
    pool = await create_pool(database_url, max_size=2)
    try:
        monitor = HealthMonitor()
        validation = ValidationHandlers(InMemoryBlobStore(), on_verdict=monitor.on_verdict if with_monitor else None)
        table = merge(validation.table(), monitor.table()) if with_monitor else validation.table()
        processor = BatchProcessor(PostgresTransactions(pool, f"bench-validation-{uuid4().hex[:6]}", PostgresValidationStore),
                                   Dispatcher(table))
        records = stream(f"bench-alerts-{uuid4().hex[:6]}", participants, rounds)
        started = time.perf_counter()
        for i in range(0, len(records), BATCH):
            await processor.process(records[i:i + BATCH])
        return len(records) / (time.perf_counter() - started)
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    endpoints = bring_up(StackSettings())
    for with_monitor in (False, True):
        rates = [asyncio.run(events_per_s(endpoints.database_url, with_monitor, args.participants, args.rounds))
                 for _ in range(args.runs)]
        label = "validation + alert processor" if with_monitor else "validation alone (inbox only)"
        print(f"{label:30s}: median {statistics.median(rates):8.0f} events/s over {args.runs} runs "
              f"({', '.join(f'{r:.0f}' for r in rates)}); {args.participants} participants × {args.rounds} rounds × "
              f"(accepted + charged)", flush=True)


if __name__ == "__main__":
    main()
