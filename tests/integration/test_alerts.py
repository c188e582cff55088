"""Alerts from the running stack: validation's stream processor publishes AlertRaised on fedstream.alerts
for the shared federation's rounds, and for a sender whose updates keep being refused."""

from __future__ import annotations

from collections import Counter
from uuid import uuid4

import asyncpg
import pytest

from fedstream.participant.simulation import create_federation
from fedstream.storage import tensors
from fedstream.storage.blobs import open_blob_store
from services.validation.health import SECURITY_REASONS, window_of
from schemas import events as ev
from schemas.alerts import AlertKind, AlertRaised, AlertSeverity
from schemas.federation import parse_spec
from schemas.topics import ALERTS, VALIDATION, topics_consumed_by
from tests.integration.harness import Submitter, TopicLog, wait_caught_up

pytestmark = pytest.mark.integration
K = AlertKind


async def test_the_shared_federation_logs_creation_joins_and_each_round_and_nothing_critical(stack, federation):
    spec, _ = federation
    await wait_caught_up(stack.endpoints, f"fedstream-{VALIDATION}", topics_consumed_by(VALIDATION))
    async with TopicLog(stack.endpoints, spec.federation_id, (ALERTS,)) as log:
        await log.read_to_end()
        alerts = log.events(AlertRaised)
    by_kind = {kind: [a for a in alerts if a.kind is kind] for kind in AlertKind}
    assert sorted(a.round for a in by_kind[K.ROUND_COMPLETED]) == list(range(1, spec.training.rounds + 1))
    assert [a.summary.split(":")[0] for a in by_kind[K.CONFIGURATION_CHANGE]] == ["federation created"]
    assert {a.subject for a in by_kind[K.PARTICIPANT_JOINED]} == {p.participant_id for p in spec.participants}
    assert [a for a in alerts if a.severity is AlertSeverity.CRITICAL] == []
    assert len({a.dedup_key for a in alerts}) == len(alerts)  # each fact once

    conn = await asyncpg.connect(stack.endpoints.database_url)  # and the time series has every round
    try:
        rounds = await conn.fetch("SELECT round, outcome FROM round_metrics WHERE federation_id = $1 ORDER BY round",
                                  spec.federation_id)
    finally:
        await conn.close()
    assert [(r["round"], r["outcome"]) for r in rounds] == [(n, "validated") for n in range(1, spec.training.rounds + 1)]


async def test_a_sender_whose_updates_are_all_refused_raises_a_warning_and_a_breach_if_they_look_hostile(stack):
    federation_id = f"alerts-{uuid4().hex[:8]}"
    spec = parse_spec(f"""
federation_id: {federation_id}
project_name: alerts
use_case: clinical_prediction
participants: [{{participant_id: a, organisation: oa}}, {{participant_id: b, organisation: ob}}]
model: {{architecture: logistic, input_dim: 4}}
training: {{rounds: 1, quorum: 2, round_deadline_s: 300, evaluation_deadline_s: 2}}
""")
    async with TopicLog(stack.endpoints, federation_id) as log:
        await create_federation(stack.endpoints, spec)
        created = await log.wait_event(ev.FederationCreated)
        await log.wait_event(ev.RoundOpened)
        initial = tensors.from_bytes(await open_blob_store(stack.endpoints.blob_store_url).get(created.initial_model))
        async with Submitter(stack.endpoints, federation_id) as sub:
            # Eight, so that even if a window boundary splits them, one window holds at least four.
            sent = [(await sub.submit("mallory", 1, initial)).update_id for _ in range(8)]
        await log.wait_for(lambda l: {e.update_id for e in l.events(ev.UpdateRejected)} >= set(sent), timeout=120)
        await log.wait_event(AlertRaised, lambda a: a.kind is K.HIGH_ERROR_RATE and a.subject == "mallory", timeout=120)
        # What the breach rule must conclude from the refusals as they happened (reasons depend on which
        # admission check refuses an unknown sender first): ≥ 3 hostile ones in one window.
        hostile_per_window = Counter(window_of(e.time, 300).start for e in log.events(ev.UpdateRejected)
                                     if e.update_id in set(sent) and e.reason in SECURITY_REASONS)
        breach_expected = max(hostile_per_window.values(), default=0) >= 3
        if breach_expected:
            breach = await log.wait_event(AlertRaised, lambda a: a.kind is K.SECURITY_BREACH, timeout=120)
            assert (breach.severity, breach.subject) == (AlertSeverity.CRITICAL, "mallory")
        await wait_caught_up(stack.endpoints, f"fedstream-{VALIDATION}", topics_consumed_by(VALIDATION))
        await log.read_to_end()
    alerts = log.events(AlertRaised)
    warning = next(a for a in alerts if a.kind is K.HIGH_ERROR_RATE)
    assert (warning.severity, warning.value, warning.threshold) == (AlertSeverity.WARNING, 1.0, 0.5)
    assert (warning.window_end - warning.window_start).total_seconds() == 300  # the default tumbling window
    expected = {K.HIGH_ERROR_RATE} | ({K.SECURITY_BREACH} if breach_expected else set())
    assert {a.kind for a in alerts if a.subject == "mallory"} == expected
