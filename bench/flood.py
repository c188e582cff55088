"""Admission under a flood: one participant floods ingestion; the others' admission latency (p50/p99).

A federation of ``honest`` participants, one flooder and one absent participant (so the round stays
open throughout). Honest participants submit at a steady pace (well under their rate limit), first
alone (baseline), then while the flooder publishes ``flood`` signed submissions at once. The flooder is
authenticated, so its updates pass the signature check and are then refused ``rate_limited`` beyond its
token bucket — cheaply, before any tensor is read — instead of being queued in front of everyone else.

Latency is from publishing a submission to seeing ingestion's decision (accepted or rejected) on the
admissions topic. Printed, and returned for ``bench.pipeline`` (``make bench``); the median over runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from uuid import UUID, uuid4

import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.actors import KEYS, BenchParticipants, federation_spec
from fedstream.messaging.codec import MalformedMessage, Record, decode, encode
from fedstream.messaging.consumer import to_record
from fedstream.messaging.kafka import client_security, make_producer, send_records
from fedstream.settings import Endpoints
from schemas import events as ev
from schemas.topics import ADMISSIONS, SUBMISSIONS


class AdmissionWatch:
    """When each update's admission decision appeared on the admissions topic (monotonic clock)."""

    def __init__(self, endpoints: Endpoints, federation_id: str) -> None:
        self.federation_id = federation_id.encode()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.kafka_bootstrap_servers, enable_auto_commit=False,
                                         fetch_max_wait_ms=5, **client_security(endpoints))
        self.decided: dict[UUID, tuple[float, ev.Event]] = {}
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> "AdmissionWatch":
        await self.consumer.start()
        partitions = [TopicPartition(ADMISSIONS.name, p) for p in range(ADMISSIONS.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await self.consumer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            for messages in batches.values():
                for m in messages:
                    if m.key != self.federation_id:
                        continue
                    try:
                        event = decode(to_record(m))
                    except MalformedMessage:
                        continue
                    self.decided.setdefault(event.update_id, (now, event))

    async def wait_all(self, update_ids: set[UUID], timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not update_ids <= self.decided.keys():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(update_ids - self.decided.keys())} submissions never got a decision")
            await asyncio.sleep(0.05)  # polling what the watcher has seen, bounded by the deadline


def submission(actors: BenchParticipants, participant: str) -> ev.UpdateSubmitted:
    return KEYS.sign(ev.UpdateSubmitted(
        source=f"participant/{participant}", federation_id=actors.spec.federation_id, update_id=uuid4(),
        participant_id=participant, round=1, base_model_version=0, update=actors.refs[0], num_examples=100, train_loss=0.5,
    ))


async def honest_pace(actors: BenchParticipants, watch: AdmissionWatch, honest: list[str], per_participant: int,
                      interval_s: float) -> list[float]:
    """Each honest participant submits ``per_participant`` times, ``interval_s`` apart; latencies in seconds."""
    sent: dict[UUID, float] = {}
    for _ in range(per_participant):
        events = [submission(actors, p) for p in honest]
        at = time.monotonic()
        await send_records(actors.producer, [encode(e, SUBMISSIONS.name) for e in events])
        sent.update({e.update_id: at for e in events})
        await asyncio.sleep(interval_s)  # the pace of the honest participants (the load), not a synchronisation
    await watch.wait_all(set(sent))
    return [watch.decided[u][0] - t for u, t in sent.items()]


def publish(endpoints: Endpoints, records: list[Record]) -> None:
    """The flooder's process: publish ``records`` as fast as its producer allows."""

    async def run() -> None:
        producer = make_producer(endpoints, "bench-flooder")
        await producer.start()
        try:
            await send_records(producer, records)
        finally:
            await producer.stop()

    if records:
        asyncio.run(run())


def summary(latencies: list[float]) -> dict:
    values = np.asarray(latencies)
    return {"p50_ms": float(np.percentile(values, 50) * 1000), "p99_ms": float(np.percentile(values, 99) * 1000),
            "samples": len(latencies)}


async def one_run(endpoints: Endpoints, honest_n: int, flood_n: int, per_participant: int, interval_s: float) -> dict:
    spec = federation_spec(f"bench-flood-{uuid4().hex[:6]}", honest_n + 2, 1_000, rounds=1, quorum=honest_n + 2)
    ids = list(spec.participant_ids)
    flooder, honest = ids[0], ids[1:-1]  # the last one never submits: the round stays open
    async with BenchParticipants(endpoints, spec) as actors:
        await actors.start_federation()
        await actors.prepare_updates(variants=1)
        async with AdmissionWatch(endpoints, spec.federation_id) as watch:
            baseline = await honest_pace(actors, watch, honest, per_participant, interval_s)
            flood = [submission(actors, flooder) for _ in range(flood_n)]  # signed before the clock starts
            # The flooder is another client on another machine: its own process, so that producing the
            # flood neither queues in the honest participants' producer nor holds up this event loop.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as flooder_process:
                await asyncio.get_running_loop().run_in_executor(flooder_process, publish, endpoints, [])  # started
                flooding = asyncio.get_running_loop().run_in_executor(
                    flooder_process, publish, endpoints, [encode(e, SUBMISSIONS.name) for e in flood])
                during = await honest_pace(actors, watch, honest, per_participant, interval_s)
                await flooding
            await watch.wait_all({e.update_id for e in flood})
            outcomes = Counter(
                "accepted" if isinstance(d, ev.UpdateAccepted) else d.reason.value
                for u, (_, d) in watch.decided.items() if u in {e.update_id for e in flood}
            )
    return {"baseline": summary(baseline), "during_flood": summary(during), "flood_outcomes": dict(outcomes)}


async def flood_figures(endpoints: Endpoints, runs: int = 3, honest: int = 10, flood: int = 2000,
                        per_participant: int = 10, interval_s: float = 0.2) -> dict:
    results = []
    for i in range(runs):
        r = await one_run(endpoints, honest, flood, per_participant, interval_s)
        results.append(r)
        print(f"  run {i + 1}: others' admission p50/p99 {r['baseline']['p50_ms']:.0f}/{r['baseline']['p99_ms']:.0f} ms alone, "
              f"{r['during_flood']['p50_ms']:.0f}/{r['during_flood']['p99_ms']:.0f} ms during a flood of {flood} "
              f"({r['flood_outcomes']})", flush=True)

    def median(phase: str, key: str) -> float:
        return statistics.median(r[phase][key] for r in results)

    return {
        "honest_participants": honest, "flood_submissions": flood, "runs": runs,
        "baseline_p50_ms": median("baseline", "p50_ms"), "baseline_p99_ms": median("baseline", "p99_ms"),
        "during_flood_p50_ms": median("during_flood", "p50_ms"), "during_flood_p99_ms": median("during_flood", "p99_ms"),
        "all": results,
    }


def main() -> None:
    from bench.pipeline import RESULTS
    from fedstream.cli.stack_cmd import bring_up
    from fedstream.settings import StackSettings
    from fedstream.supervisor import Supervisor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--honest", type=int, default=10)
    parser.add_argument("--flood", type=int, default=2000)
    args = parser.parse_args()
    settings = StackSettings()
    endpoints = bring_up(settings)
    supervisor = Supervisor(settings.state_dir / "logs", env=dict(os.environ, FEDSTREAM_STATE_DIR=str(settings.state_dir.resolve())))
    supervisor.start()
    try:
        print(f"flood: one participant publishes {args.flood} submissions; {args.honest} others keep submitting:", flush=True)
        report = asyncio.run(flood_figures(endpoints, args.runs, args.honest, args.flood))
    finally:
        supervisor.stop()
    print(f"  median of {args.runs}: others' p50 {report['during_flood_p50_ms']:.0f} ms, p99 {report['during_flood_p99_ms']:.0f} ms "
          f"(alone: p50 {report['baseline_p50_ms']:.0f} ms, p99 {report['baseline_p99_ms']:.0f} ms)")
    Path(RESULTS).mkdir(exist_ok=True)
    (Path(RESULTS) / "flood.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
