"""Traces cross every service; every service serves Prometheus metrics."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import defaultdict

import pytest
from opentelemetry import trace
from prometheus_client.parser import text_string_to_metric_families

from schemas.topics import SERVICES

pytestmark = pytest.mark.integration


def spans_by_trace(traces_dir) -> dict[str, list[dict]]:
    traces: dict[str, list[dict]] = defaultdict(list)
    for path in traces_dir.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                span = json.loads(line)
                traces[span["trace_id"]].append(span)
    return traces


def test_one_trace_follows_an_update_through_all_six_services_to_the_release(stack, federation):
    spec, result = federation
    trace.get_tracer_provider().force_flush()
    wanted = {f"fedstream-{s}" for s in SERVICES} | {"fedstream-participant"}
    deadline = time.monotonic() + 30  # services export spans in batches: wait for the condition, bounded
    while True:
        traces = spans_by_trace(stack.settings.state_dir / "traces")
        released = [
            t for t in traces.values()
            if any(s["attributes"].get("cloudevents.event_type") == "io.fedstream.model.released.v1" for s in t)
            and any(s["attributes"].get("cloudevents.event_type") == "io.fedstream.update.submitted.v1" for s in t)
            and all(s["attributes"].get("fedstream.federation_id", spec.federation_id) == spec.federation_id for s in t)
        ]
        complete = [t for t in released if {s["service"] for s in t} >= wanted]
        if complete or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # polling files the exporters append to, under the deadline above
    assert complete, f"services seen in release traces: {[sorted({s['service'] for s in t}) for t in released][:3]}"
    spans = complete[0]
    # opaque identifiers only: no attribute value carries anything but ids, types, topics and numbers
    for span in spans:
        for key in span["attributes"]:
            assert key.startswith(("messaging.", "cloudevents.", "fedstream.", "db.", "net.", "server.", "network.")), key


def test_every_service_serves_prometheus_metrics(stack, federation):
    for service, port in stack.services.metrics_ports.items():
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        families = {f.name: f for f in text_string_to_metric_families(body)}
        assert "process_resident_memory_bytes" in families, service
        consumed = families["fedstream_events_consumed"]
        assert sum(s.value for s in consumed.samples if s.name.endswith("_total")) > 0, service
    ingestion = urllib.request.urlopen(f"http://127.0.0.1:{stack.services.metrics_ports['ingestion']}/metrics").read().decode()
    accepted = {f.name: f for f in text_string_to_metric_families(ingestion)}["fedstream_updates_accepted"]
    assert sum(s.value for s in accepted.samples if s.name.endswith("_total")) >= 3 * spec_rounds(federation)


def spec_rounds(federation) -> int:
    spec, _ = federation
    return spec.training.rounds


def test_round_durations_are_observed_by_the_registry(stack, federation):
    body = urllib.request.urlopen(f"http://127.0.0.1:{stack.services.metrics_ports['registry']}/metrics").read().decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    counts = [s.value for s in families["fedstream_round_duration_seconds"].samples if s.name.endswith("_count")]
    assert sum(counts) >= spec_rounds(federation)
    rounds = {s.labels.get("outcome"): s.value for s in families["fedstream_rounds"].samples if s.name.endswith("_total")}
    assert rounds.get("released", 0) >= spec_rounds(federation)
