"""Bad input on the real stack: malformed bytes are dead-lettered; every bad update is rejected with
its machine-readable reason, and nothing it carried is counted."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import numpy as np
import pytest

from fedstream.participant.simulation import create_federation
from fedstream.storage import tensors
from fedstream.storage.blobs import open_blob_store
from schemas import events as ev
from schemas.federation import parse_spec
from schemas.topics import AGGREGATES
from tests.integration.harness import Submitter, TopicLog, wait_caught_up

pytestmark = pytest.mark.integration
R = ev.RejectionReason


def small_spec(federation_id: str, quorum: int, round_deadline_s: float, max_update_bytes: int = 1_000_000):
    return parse_spec(f"""
federation_id: {federation_id}
project_name: integration
use_case: clinical_prediction
participants: [{{participant_id: a, organisation: oa}}, {{participant_id: b, organisation: ob}}, {{participant_id: c, organisation: oc}}]
model: {{architecture: logistic, input_dim: 4}}
training: {{rounds: 1, quorum: {quorum}, round_deadline_s: {round_deadline_s}, evaluation_deadline_s: 2}}
limits: {{max_update_bytes: {max_update_bytes}}}
""")


async def start(stack, spec):
    log = TopicLog(stack.endpoints, spec.federation_id)
    await log.__aenter__()
    await create_federation(stack.endpoints, spec)
    created = await log.wait_event(ev.FederationCreated)
    await log.wait_event(ev.RoundOpened)
    initial = tensors.from_bytes(await open_blob_store(stack.endpoints.blob_store_url).get(created.initial_model))
    return log, initial


async def test_malformed_and_invalid_submissions(stack):
    # A generous deadline: the round closes when all three have submitted, never by the clock, so a slow
    # (cold, loaded) stack cannot turn this test's outcome around.
    spec = small_spec(f"bad-{uuid4().hex[:8]}", quorum=2, round_deadline_s=300, max_update_bytes=600)
    log, initial = await start(stack, spec)
    try:
        async with Submitter(stack.endpoints, spec.federation_id) as sub:
            await sub.publish_raw(b"\xff\xfe definitely not an event", [("ce_specversion", b"1.0"), ("ce_type", b"io.fedstream.update.submitted.v1")])
            valid = {k: v + 0.5 for k, v in initial.items()}
            wrong_shape = {**valid, "0.weight": np.ones((1, 5), np.float32)}
            with_nan = {k: v.copy() for k, v in valid.items()}
            with_nan["0.bias"][0] = np.nan
            expected = {
                (await sub.submit("mallory", 1, valid)).update_id: R.NOT_ENROLLED,
                (await sub.submit("a", 1, wrong_shape)).update_id: R.SHAPE_MISMATCH,
                (await sub.submit("a", 1, with_nan)).update_id: R.NON_FINITE,
                (await sub.submit("a", 1, payload=b"x" * 5000)).update_id: R.OVERSIZE,
                (await sub.submit("a", 2, valid)).update_id: R.UNKNOWN_ROUND,
            }
            accepted = [(await sub.submit("a", 1, valid, num_examples=10)).update_id]
            expected[(await sub.submit("a", 1, valid)).update_id] = R.DUPLICATE
            accepted.append((await sub.submit("b", 1, {k: v - 0.5 for k, v in initial.items()}, num_examples=30)).update_id)
            accepted.append((await sub.submit("c", 1, valid, num_examples=20)).update_id)

            aggregated = await log.wait_event(ev.RoundAggregated, timeout=120)
            await wait_caught_up(stack.endpoints, "fedstream-ingestion", (AGGREGATES,))  # ingestion knows it closed
            expected[(await sub.submit("a", 1, valid)).update_id] = R.STALE_ROUND  # the round is closed now
            await log.wait_for(lambda l: {e.update_id for e in l.events(ev.UpdateRejected)} >= set(expected))

        # every consumer of the topic that could not decode the record dead-letters it once, byte for byte
        dead = [r for r in log.records if r.topic == "fedstream.deadletter"]
        assert sorted(r.header("x-fedstream-consumer") for r in dead) == ["compliance", "ingestion"]
        assert all(r.value == b"\xff\xfe definitely not an event" and r.header("x-fedstream-error") for r in dead)

        reasons = {e.update_id: e.reason for e in log.events(ev.UpdateRejected)}
        assert {u: reasons[u] for u in expected} == expected
        assert {e.update_id for e in log.events(ev.UpdateAccepted)} == set(accepted)
        assert sorted(c.participant_id for c in aggregated.contributions) == ["a", "b", "c"]
        assert aggregated.closed_by == "all_submitted"

        conn = await asyncpg.connect(stack.endpoints.database_url)
        try:
            counted = await conn.fetch("SELECT update_id FROM aggregation_contributions WHERE federation_id = $1", spec.federation_id)
            charged = await conn.fetch("SELECT update_id FROM privacy_ledger WHERE federation_id = $1", spec.federation_id)
        finally:
            await conn.close()
        assert {r["update_id"] for r in counted} == set(accepted)
        assert {r["update_id"] for r in charged} == set(accepted)
    finally:
        await log.__aexit__(None, None, None)
