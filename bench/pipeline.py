"""`make bench`: pipeline throughput and latency on the embedded stack, printed and written as JSON.

1. Throughput — N participants submit pre-computed updates of P parameters as fast as they can; we
   time from the first submission to the ``round aggregated`` event (every update admitted, charged,
   counted and averaged by the real services): sustained updates/s, for P = 10k, 100k and 1M.
2. Close → release latency — 15 participants, many rounds; the bench answers each candidate with
   evaluations at once, so the figure is the platform's own path (aggregation → validation → registry).
3. Peak resident memory of each service process during the run.
3b. Admission under a flood: one participant floods ingestion, the others' p50/p99 admission latency.
4. The 15-hospital demo federation: wall time per round with real PyTorch training.
5. Seed §5.1's rows: non-private, "Basic DP" (ε = 0.5) and "Optimized DP" (bench/privacy.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import numpy as np
import psutil

from bench.actors import BenchParticipants, federation_spec
from bench.flood import flood_figures
from bench.privacy import privacy_rows
from fedstream.cli.stack_cmd import bring_up
from fedstream.settings import StackSettings
from fedstream.supervisor import Supervisor

RESULTS = Path("bench-results")


@dataclass
class MemoryWatch:
    """Samples each service's RSS in a thread; keeps the peak."""

    supervisor: Supervisor
    interval_s: float = 0.2
    peaks_mb: dict[str, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "MemoryWatch":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for name, child in self.supervisor.children.items():
                try:
                    rss = psutil.Process(child.process.pid).memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peaks_mb[name] = max(self.peaks_mb.get(name, 0.0), rss)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


async def throughput(endpoints, params: int, participants: int, runs: int) -> dict:
    rates = []
    for _ in range(runs):
        spec = federation_spec(f"bench-p{params}-{uuid4().hex[:6]}", participants, params, rounds=1, quorum=participants)
        async with BenchParticipants(endpoints, spec) as actors:
            await actors.start_federation()
            await actors.prepare_updates(variants=min(participants, 32))
            elapsed = await actors.submit_round_and_wait(round_number=1)
        rates.append(participants / elapsed)
        print(f"  P={params:>9,} N={participants:>5}: {participants / elapsed:8.1f} updates/s ({elapsed:.2f}s)", flush=True)
    return {"params": params, "participants": participants, "runs": runs,
            "updates_per_s_median": statistics.median(rates), "updates_per_s_all": rates}


async def close_to_release(endpoints, rounds: int) -> dict:
    spec = federation_spec(f"bench-latency-{uuid4().hex[:6]}", 15, 10_000, rounds=rounds, quorum=15)
    async with BenchParticipants(endpoints, spec, evaluate=True) as actors:
        await actors.start_federation()
        await actors.prepare_updates(variants=15)
        latencies = await actors.run_rounds(rounds)
    return {"participants": 15, "rounds": len(latencies), "p50_s": percentile(latencies, 50),
            "p99_s": percentile(latencies, 99), "max_s": max(latencies)}


async def demo_round_time(endpoints) -> dict:
    from fedstream.cli.run_cmd import DEFAULT_DEMO_SPEC, load_spec
    from fedstream.participant.simulation import simulate

    spec = load_spec(DEFAULT_DEMO_SPEC, f"bench-demo-{uuid4().hex[:6]}")
    result = await simulate(endpoints, spec)
    times = [(r.time - result.progress.opened[n].time).total_seconds() for n, r in result.progress.released.items()]
    final = result.progress.released[max(result.progress.released)].metrics
    return {"rounds": len(times), "round_time_median_s": statistics.median(times), "round_time_p99_s": percentile(times, 99),
            "wall_s": result.wall_s, "final_auc": final.auc, "completion": result.progress.completed.reason.value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--params", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--latency-rounds", type=int, default=40)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-flood", action="store_true", help="skip admission latency under one participant's flood")
    parser.add_argument("--skip-privacy", action="store_true", help="skip the DP rows (three 15-hospital federations)")
    args = parser.parse_args()

    settings = StackSettings()
    endpoints = bring_up(settings)
    supervisor = Supervisor(settings.state_dir / "logs", env=dict(os.environ, FEDSTREAM_STATE_DIR=str(settings.state_dir.resolve())))
    supervisor.start()
    report: dict = {"when": datetime.now(UTC).isoformat(), "machine": {"cpus": os.cpu_count(), "kafka": endpoints.kafka_flavour}}
    try:
        with MemoryWatch(supervisor) as memory:
            print("throughput (submission → round aggregated):", flush=True)
            report["throughput"] = []
            for p in args.params:
                n = args.participants if p <= 100_000 else max(50, args.participants // 10)
                report["throughput"].append(asyncio.run(throughput(endpoints, p, n, args.runs)))
            print("close → release latency, 15 participants:", flush=True)
            report["close_to_release"] = asyncio.run(close_to_release(endpoints, args.latency_rounds))
            print(f"  p50 {report['close_to_release']['p50_s'] * 1000:.0f} ms, p99 {report['close_to_release']['p99_s'] * 1000:.0f} ms", flush=True)
            if not args.skip_flood:
                print("admission under a flood (bench/flood.py): the others' latency, median of runs:", flush=True)
                report["flood"] = asyncio.run(flood_figures(endpoints, runs=args.runs))
            if not args.skip_demo:
                print("15-hospital demo federation (real training):", flush=True)
                report["demo"] = asyncio.run(demo_round_time(endpoints))
                print(f"  {report['demo']['rounds']} rounds, median {report['demo']['round_time_median_s']:.2f}s per round", flush=True)
            if not args.skip_privacy:
                print("privacy rows, 15 hospitals (seed §5.1):", flush=True)
                report["privacy"] = asyncio.run(privacy_rows(endpoints))
        report["peak_rss_mb"] = memory.peaks_mb
        print("peak RSS per service (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(memory.peaks_mb.items())))
    finally:
        supervisor.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"written {RESULTS / 'pipeline.json'}")


if __name__ == "__main__":
    main()
