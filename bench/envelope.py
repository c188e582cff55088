"""`make bench` (encryption at rest): the cost of sealing update blobs (AES-256-GCM envelope encryption).

Writes and reads back blobs of 1 and 16 MiB through the file blob store, plain and sealed under a
participant's key in the local keyring (fedstream.storage.envelope). Each figure is the median of
``--runs`` runs; written to bench-results/envelope.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from fedstream.security.keys import open_key_manager
from fedstream.storage.blobs import FileBlobStore
from fedstream.storage.envelope import EnvelopeBlobStore


async def round_trip_ms(store, data: bytes, owner: str | None, runs: int) -> float:
    times = []
    for i in range(runs):
        payload = data[:-8] + i.to_bytes(8, "big")  # a new blob each run: no content-addressed shortcut
        started = time.perf_counter()
        ref = await store.put(payload, owner=owner)
        assert await store.get(ref) == payload
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def main(runs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        plain = FileBlobStore(Path(tmp) / "blobs")
        sealed = EnvelopeBlobStore(plain, open_key_manager(f"local://{Path(tmp) / 'keyring'}"))
        results = {}
        for mib in (1, 16):
            data = os.urandom(mib << 20)
            results[f"{mib}MiB"] = {
                "plain_put_get_ms": await round_trip_ms(plain, data, None, runs),
                "sealed_put_get_ms": await round_trip_ms(sealed, data, "site-a", runs),
            }
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    figures = asyncio.run(main(parser.parse_args().runs))
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/envelope.json").write_text(json.dumps(figures, indent=2))
    for size, f in figures.items():
        print(f"{size}: put+get plain {f['plain_put_get_ms']:.1f} ms, sealed {f['sealed_put_get_ms']:.1f} ms (median)")
