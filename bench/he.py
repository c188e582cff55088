"""`make bench` (HE part): homomorphic encryption costs for P = 100k parameters and 15 participants.

1. Participant encryption time per update (CKKS, poly degree 8192; 1 thread and the runtime's 2).
2. Ciphertext expansion: the encrypted update's bytes over the plaintext safetensors update's bytes,
   and what SEAL's own zstd compression saves on the serialised ciphertexts.
3. Aggregator absorption: updates/s deserialised, weighted (plaintext scalar) and added — through the
   aggregation service's own summers: one process, and the process pool it runs with (2 workers).
4. The same for BFV (exact, quantised updates).

Each figure is the median of ``--runs`` runs. No stack needed: the summers read blobs from a temporary
file blob store, exactly as the service's workers do. Written to bench-results/he.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fedstream.crypto import he
from fedstream.crypto.he_parallel import InProcessSummer, ProcessPoolSummer, SumRequest
from fedstream.storage import tensors
from fedstream.storage.blobs import FileBlobStore, open_blob_store
from schemas.he import HeScheme, HeSpec

RESULTS = Path("bench-results")


def _median_time(fn, runs: int) -> float:  # noqa: ANN001
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def encryption(fc: he.FederationContext, values: list[np.ndarray], runs: int) -> dict:
    one = _median_time(lambda: he.encrypt(fc, values[0]), runs)
    with ThreadPoolExecutor(2) as pool:  # the participant runtime encrypts its sites' updates on 2 threads
        pair = _median_time(lambda: list(pool.map(functools.partial(he.encrypt, fc), values[:2])), runs)
    return {"encrypt_s_per_update": one, "encrypt_s_per_update_2_threads": pair / 2}


def expansion(fc: he.FederationContext, spec: HeSpec, update: np.ndarray, ciphertext: bytes) -> dict:
    plaintext = len(tensors.to_bytes({"w": update.astype(np.float32)}))
    header, _ = he.read_header(ciphertext)
    data_primes = len(spec.moduli) - 1  # a fresh ciphertext lives at the top data level
    raw = len(header.chunks) * 2 * data_primes * spec.poly_modulus_degree * 8  # 2 polynomials of 64-bit words
    return {"plaintext_bytes": plaintext, "ciphertext_bytes": len(ciphertext), "ciphertexts": len(header.chunks),
            "expansion_factor": len(ciphertext) / plaintext, "seal_zstd_saves": 1 - sum(header.chunks) / raw}


async def absorption(store_dir: Path, refs, context_ref, length: int, weights, runs: int, workers: int) -> dict:
    request = SumRequest(context_ref, length, tuple(zip(refs, weights)))
    summers = {"1_process": InProcessSummer(FileBlobStore(store_dir)),
               f"{workers}_processes": ProcessPoolSummer(functools.partial(open_blob_store, store_dir.as_uri()), workers)}
    out = {}
    for name, summer in summers.items():
        await summer.weighted_sum(SumRequest(context_ref, length, request.items[:workers]))  # warm: spawn, load context
        rates, cpu = [], []
        for _ in range(runs):
            started, cpu_started = time.perf_counter(), time.process_time()
            await summer.weighted_sum(request)
            rates.append(len(refs) / (time.perf_counter() - started))
            cpu.append((time.process_time() - cpu_started) / len(refs))
        out[f"updates_per_s_{name}"] = statistics.median(rates)
        out[f"updates_per_s_{name}_all"] = rates
        if isinstance(summer, InProcessSummer):
            # CPU seconds per update (read, verify, deserialise, weight, add): what a loaded machine's
            # wall clock hides; `workers` free cores absorb workers / cpu_s updates per second.
            out["cpu_s_per_update"] = statistics.median(cpu)
            out[f"cpu_bound_updates_per_s_{workers}_cores"] = workers / statistics.median(cpu)
        if isinstance(summer, ProcessPoolSummer):
            summer.close()
    return out


def accuracy(secret: he.FederationContext, fc: he.FederationContext, spec: HeSpec, updates, ciphertexts) -> float:  # noqa: ANN001
    """Largest |decrypted FedAvg − plaintext FedAvg| over the P values (0 for BFV: exact on the integers)."""
    examples = [100 + 7 * i for i in range(len(updates))]
    total = sum(examples)
    if spec.scheme is HeScheme.CKKS:
        got = he.decrypt(secret, he.weighted_sum(fc, ciphertexts, [n / total for n in examples], len(updates[0])), len(updates[0]))
        return float(np.abs(got - sum(n * u for n, u in zip(examples, updates)) / total).max())
    got = he.decrypt(secret, he.weighted_sum(fc, ciphertexts, examples, len(updates[0])), len(updates[0]))
    return float(np.abs(got - sum(n * u for n, u in zip(examples, updates))).max())


async def scheme_row(spec: HeSpec, params: int, participants: int, per_round: int, runs: int, workers: int) -> dict:
    rng = np.random.default_rng(0)
    secret, public_bytes = he.make_context(spec)
    fc = he.load_public_context(public_bytes)
    updates = [rng.normal(0, 0.1, params) for _ in range(participants)]
    if spec.scheme is HeScheme.BFV:
        updates = [he.quantise(u, spec.quantisation_bits) for u in updates]
    row = {"scheme": spec.scheme.value, "poly_modulus_degree": spec.poly_modulus_degree, "coeff_mod_bit_sizes": list(spec.moduli),
           "params": params, "participants": participants, **encryption(fc, updates, runs)}
    ciphertexts = [he.encrypt(fc, u) for u in updates]
    row |= expansion(fc, spec, np.asarray(updates[0], np.float64), ciphertexts[0])
    row["max_abs_error_vs_plaintext_fedavg"] = accuracy(secret, fc, spec, updates, ciphertexts)
    with tempfile.TemporaryDirectory(prefix="fedstream-he-bench-") as tmp:
        store = FileBlobStore(Path(tmp))
        context_ref = await store.put(public_bytes)
        stored = [await store.put(c, he.MEDIA_TYPE) for c in ciphertexts]
        refs = [stored[i % participants] for i in range(per_round)]  # a round of per_round updates
        examples = [100 + 7 * i for i in range(per_round)]
        weights = [n / sum(examples) for n in examples] if spec.scheme is HeScheme.CKKS else examples
        row |= await absorption(Path(tmp), refs, context_ref, params, weights, runs, workers)
    row["updates_summed_per_run"] = per_round
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=int, default=100_000)
    parser.add_argument("--participants", type=int, default=15)
    parser.add_argument("--updates", type=int, default=60, help="updates summed per absorption run")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    rows = []
    # The default CKKS set (precise: error ~1e-8), a fast CKKS set (one 60-bit data prime, scale 2^24:
    # half the bytes, error ~1e-4 — far below DP-SGD noise), and BFV (exact).
    for spec in (HeSpec(), HeSpec(coeff_mod_bit_sizes=(60, 60), global_scale_bits=24), HeSpec(scheme=HeScheme.BFV)):
        row = asyncio.run(scheme_row(spec, args.params, args.participants, args.updates, args.runs, args.workers))
        rows.append(row)
        print(f"HE {row['scheme']:4s} N={row['poly_modulus_degree']} {row['coeff_mod_bit_sizes']} P={row['params']:,}: "
              f"encrypt {row['encrypt_s_per_update'] * 1000:.0f} ms/update "
              f"({row['encrypt_s_per_update_2_threads'] * 1000:.0f} ms on 2 threads), "
              f"{row['ciphertexts']} ciphertexts, expansion ×{row['expansion_factor']:.1f} "
              f"(zstd saves {row['seal_zstd_saves']:.0%}), max error {row['max_abs_error_vs_plaintext_fedavg']:.1e}, aggregator "
              f"{row['updates_per_s_1_process']:.0f} updates/s in 1 process, "
              f"{row[f'updates_per_s_{args.workers}_processes']:.0f} in {args.workers} "
              f"(CPU {row['cpu_s_per_update'] * 1000:.0f} ms/update: "
              f"{row[f'cpu_bound_updates_per_s_{args.workers}_cores']:.0f} updates/s on {args.workers} free cores)", flush=True)
    RESULTS.mkdir(exist_ok=True)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(), "rows": rows}
    (RESULTS / "he.json").write_text(json.dumps(report, indent=2))
    print(f"written {RESULTS / 'he.json'}")


if __name__ == "__main__":
    main()
