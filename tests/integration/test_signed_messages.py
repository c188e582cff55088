"""Heartbeats and evaluation reports on the real stack are believed only when their participant signed them:
an unsigned, forged, tampered or replayed one makes nobody live, raises no join and counts in no verdict, while
each participant's own messages still do (the shared federation, run by the simulator, completes as before)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from uuid import uuid4

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fedstream.participant.identity import ParticipantKeys
from fedstream.participant.simulation import create_federation
from fedstream.security import signing
from fedstream.storage import tensors
from fedstream.storage.blobs import open_blob_store
from fedstream.storage.coordination import RedisCoordination
from schemas import events as ev
from schemas.alerts import AlertKind, AlertRaised
from schemas.base import utcnow
from schemas.federation import parse_spec
from schemas.topics import EVALUATIONS, HEARTBEATS, INGESTION, ROUNDS, VALIDATION
from tests.integration.harness import Submitter, TopicLog, wait_caught_up

pytestmark = pytest.mark.integration


def two_site_spec(federation_id: str, a: str, b: str):
    return parse_spec(f"""
federation_id: {federation_id}
project_name: signed messages
use_case: clinical_prediction
participants: [{{participant_id: {a}, organisation: org-{a}}}, {{participant_id: {b}, organisation: org-{b}}}]
model: {{architecture: logistic, input_dim: 4}}
training: {{rounds: 1, quorum: 2, round_deadline_s: 300, evaluation_deadline_s: 240}}
validation: {{metric: accuracy, min_metric: 0.0, max_regression: 1.0, convergence_threshold: 0.0, patience: 10}}
""")


def beat(federation_id: str, participant: str, ttl_s: float = 30) -> ev.ParticipantHeartbeat:
    return ev.ParticipantHeartbeat(source=f"participant/{participant}", federation_id=federation_id,
                                   participant_id=participant, ttl_s=ttl_s)


def forge(event, keys: ParticipantKeys, as_participant: str):
    """``event`` signed with ``as_participant``'s key, whoever the event claims to be."""
    return signing.sign(event, HEARTBEATS.name if isinstance(event, ev.ParticipantHeartbeat) else EVALUATIONS.name,
                        keys.key(as_participant), utcnow())


async def poll(condition, timeout: float = 60) -> None:
    """Until ``condition()`` (async) holds; a condition on the stack's state, under a deadline."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)  # between polls of a condition, bounded by the deadline


def refusals(stack, service: str) -> set[str]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{stack.services.metrics_ports[service]}/metrics", timeout=5).read().decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    family = families.get("fedstream_messages_refused")
    return set() if family is None else {s.labels["reason"] for s in family.samples if s.name.endswith("_total") and s.value > 0}


async def test_only_a_participants_own_fresh_heartbeat_makes_it_live(stack):
    suffix = uuid4().hex[:6]
    a, b, mallory, stranger = (f"hb-{suffix}-{x}" for x in ("a", "b", "m", "s"))
    spec = two_site_spec(f"beats-{suffix}", a, b)
    fid = spec.federation_id
    redis = RedisCoordination.from_url(stack.endpoints.redis_url)
    try:
        async with TopicLog(stack.endpoints, fid) as log, Submitter(stack.endpoints, fid) as sub:
            await sub.enrol(a, b, mallory)
            await create_federation(stack.endpoints, spec)
            await log.wait_event(ev.FederationCreated)
            for service in (INGESTION, VALIDATION):
                await wait_caught_up(stack.endpoints, f"fedstream-{service}", (ROUNDS,))

            await sub.publish(beat(fid, a))  # unsigned
            await sub.publish(forge(beat(fid, b), sub.keys, mallory))  # an enrolled key, claiming another participant
            await sub.publish(ParticipantKeys().sign(beat(fid, b)))  # b's name, a key nobody enrolled
            await sub.publish(forge(beat(fid, stranger), sub.keys, mallory))
            for service in (INGESTION, VALIDATION):
                await wait_caught_up(stack.endpoints, f"fedstream-{service}", (HEARTBEATS,))
            assert await redis.live_participants(fid) == set()

            # a's own beat counts; once it has expired, the same signed beat sent again does not bring a back
            genuine = sub.keys.sign(beat(fid, a, ttl_s=1))
            await sub.publish(genuine)
            await poll(lambda: _is_live(redis, fid, a))
            await poll(lambda: _not_live(redis, fid, a))
            await sub.publish(genuine.model_copy(update={"event_id": uuid4()}))
            await sub.publish(sub.keys.sign(beat(fid, b)))  # after it, in order: b's own beat
            await poll(lambda: _is_live(redis, fid, b))
            assert a not in await redis.live_participants(fid)

            await wait_caught_up(stack.endpoints, f"fedstream-{VALIDATION}", (HEARTBEATS,))
            await log.wait_event(AlertRaised, lambda e: e.kind is AlertKind.PARTICIPANT_JOINED and e.subject == b)
            await log.read_to_end()
    finally:
        await redis.close()
    joined = [e.subject for e in log.events(AlertRaised) if e.kind is AlertKind.PARTICIPANT_JOINED]
    assert sorted(joined) == sorted([a, b])  # a once, for its genuine beat; nothing for the stranger
    expected = {"unsigned", "source_mismatch", "unknown_key", "replayed"}
    assert refusals(stack, INGESTION) >= expected and refusals(stack, VALIDATION) >= expected


async def _is_live(redis: RedisCoordination, federation_id: str, participant: str) -> bool:
    return participant in await redis.live_participants(federation_id)


async def _not_live(redis: RedisCoordination, federation_id: str, participant: str) -> bool:
    return participant not in await redis.live_participants(federation_id)


async def test_a_forged_evaluation_report_is_not_counted(stack):
    suffix = uuid4().hex[:6]
    a, b = f"ev-{suffix}-a", f"ev-{suffix}-b"
    spec = two_site_spec(f"evals-{suffix}", a, b)
    fid = spec.federation_id
    async with TopicLog(stack.endpoints, fid) as log, Submitter(stack.endpoints, fid) as sub:
        await sub.enrol(a, b)
        await create_federation(stack.endpoints, spec)
        created = await log.wait_event(ev.FederationCreated)
        await log.wait_event(ev.RoundOpened)
        initial = tensors.from_bytes(await open_blob_store(stack.endpoints.blob_store_url).get(created.initial_model))
        for p in (a, b):
            await sub.submit(p, 1, initial)
        aggregated = await log.wait_event(ev.RoundAggregated, timeout=120)

        def report(participant: str, accuracy: float) -> ev.EvaluationReported:
            return ev.EvaluationReported(source=f"participant/{participant}", federation_id=fid, participant_id=participant,
                                         round=1, candidate_sha256=aggregated.aggregate.sha256, num_examples=50,
                                         loss=0.5, accuracy=accuracy, auc=None)

        genuine_a = sub.keys.sign(report(a, 0.9))
        await sub.publish(genuine_a)
        # Each of these would complete the set of contributors and decide the candidate at once, if it counted.
        await sub.publish(report(b, 0.01))  # unsigned
        await sub.publish(forge(report(b, 0.01), sub.keys, a))  # a's key, claiming b
        await sub.publish(sub.keys.sign(report(b, 0.7)).model_copy(update={"accuracy": 0.01}))  # tampered
        await sub.publish(ParticipantKeys().sign(report(b, 0.01)))  # a key nobody enrolled
        await sub.publish(genuine_a.model_copy(update={"event_id": uuid4(), "participant_id": b}))  # a's, re-labelled
        await wait_caught_up(stack.endpoints, f"fedstream-{VALIDATION}", (EVALUATIONS,))
        await log.read_to_end()
        assert log.events(ev.ModelValidated) == [] and log.events(ev.ModelRejected) == []

        await sub.publish(sub.keys.sign(report(b, 0.7)))  # b's own report
        validated = await log.wait_event(ev.ModelValidated, timeout=120)
    assert validated.metrics.evaluators == 2 and validated.metrics.accuracy == pytest.approx(0.8)
    assert refusals(stack, VALIDATION) >= {"unsigned", "source_mismatch", "signature_invalid", "unknown_key"}
