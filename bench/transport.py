"""Transport security's cost: embedded broker start and produce throughput, plaintext vs SASL_SSL.

    .venv/bin/python -m bench.transport [--runs 3] [--messages 5000]

Each run starts a broker in a fresh state dir (what a test session or a first `stack up` pays: the
sasl_ssl mode formats its own log dir with SCRAM credentials, one extra JVM start, and creates the
ACLs), then sends ``--messages`` 1 KiB records with the idempotent, acks=all producer the services use.
Medians are printed and written to bench-results/transport.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from fedstream.messaging.acls import ADMIN_USER
from fedstream.messaging.kafka import ensure_topics, make_producer
from fedstream.messaging.logins import read_logins
from fedstream.settings import Endpoints
from fedstream.stack.kafka import ApacheKafka, find_java
from schemas.topics import SUBMISSIONS

RESULTS = Path("bench-results") / "transport.json"


def _endpoints(kafka: ApacheKafka, address: str) -> Endpoints:
    common = dict(kafka_bootstrap_servers=address, database_url="postgresql://unused", redis_url="redis://unused",
                  blob_store_url="file:///unused")
    if kafka.secured is None:
        return Endpoints(**common)
    admin = read_logins(kafka.secured.logins_path)[ADMIN_USER]
    return Endpoints(**common, kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                     kafka_username=admin.username, kafka_password=SecretStr(admin.password),
                     kafka_ca_file=str(kafka.secured.tls.ca_cert))


async def one_run(security: str, messages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{security}-") as state:
        kafka = ApacheKafka(Path(state), find_java(), security=security)
        started = time.perf_counter()
        record = await kafka.ensure_running()
        start_s = time.perf_counter() - started
        try:
            endpoints = _endpoints(kafka, record.address)
            await ensure_topics(endpoints, (SUBMISSIONS,))
            producer = make_producer(endpoints, "bench-transport")
            await producer.start()
            try:
                payload = b"x" * 1024
                await producer.send_and_wait(SUBMISSIONS.name, payload, key=b"warm-up")
                sent = time.perf_counter()
                futures = [await producer.send(SUBMISSIONS.name, payload, key=str(i % 64).encode()) for i in range(messages)]
                await asyncio.gather(*futures)
                produce_s = time.perf_counter() - sent
            finally:
                await producer.stop()
        finally:
            await asyncio.to_thread(kafka.stop)
    return {"broker_start_s": start_s, "produce_msgs_per_s": messages / produce_s}


async def main(runs: int, messages: int) -> dict[str, dict[str, float]]:
    modes = ("plaintext", "sasl_ssl")
    samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for _ in range(runs):  # interleaved, so a change in the machine's load hits both modes alike
        for mode in modes:
            samples[mode].append(await one_run(mode, messages))
    results: dict[str, dict[str, float]] = {}
    for security in modes:
        results[security] = {key: statistics.median(s[key] for s in samples[security]) for key in samples[security][0]}
        results[security]["runs"] = runs
        print(f"{security:>9}: broker start {results[security]['broker_start_s']:.1f} s (median of {runs}), "
              f"produce {results[security]['produce_msgs_per_s']:,.0f} msg/s of 1 KiB")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    figures = asyncio.run(main(args.runs, args.messages))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
