"""Contracts of the alert processor's state and of the metrics time series (fake vs PostgreSQL), and the
native time partitioning of migration 012 on the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.validation.adapters import PostgresMetricsSeries, PostgresValidationStore
from services.validation.fakes import InMemoryMetricsSeries, InMemoryValidationStore
from services.validation.health import FederationHealth, Window, alert
from services.validation.ports import ParticipantBucket, ParticipantPoint, RoundBucket, RoundPoint
from schemas.alerts import AlertKind
from tests.contract.conftest import repository

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)

store = repository(InMemoryValidationStore, PostgresValidationStore)


def fid() -> str:
    return f"h-{uuid4().hex[:10]}"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def series_of(store):  # noqa: ANN001, ANN201
    return InMemoryMetricsSeries(store) if isinstance(store, InMemoryValidationStore) else PostgresMetricsSeries(store.conn)


async def test_federation_health_round_trips_and_updates(store):
    f = fid()
    assert await store.health(f) is None
    h = FederationHealth(f, 10, 0.9, 0.5, {"quorum": 2, "learning_rate": 0.1})
    await store.save_health(h)
    assert await store.health(f) == h
    changed = FederationHealth(f, 10, 0.9, 0.5, {"quorum": 3, "learning_rate": 0.1}, 2, 4, True)
    await store.save_health(changed)
    assert await store.health(f) == changed


def point(f: str, participant: str, seconds: float, kind: str, **values) -> ParticipantPoint:  # noqa: ANN003
    return ParticipantPoint(at(seconds), f, participant, 1, kind, **values)


async def test_admission_windows_add_up_per_participant_and_window(store):
    f, w1, w2 = fid(), Window(at(0), at(300)), Window(at(300), at(600))
    await store.record_admission(point(f, "a", 1, "accepted", train_loss=0.5), w1, (1, 0, 0), uuid4())
    totals = await store.record_admission(point(f, "a", 2, "rejected", reason="hash_mismatch"), w1, (0, 1, 1), None)
    assert (totals.accepted, totals.rejected, totals.suspicious, totals.window) == (1, 1, 1, w1)
    assert (await store.record_admission(point(f, "a", 301, "rejected"), w2, (0, 1, 0), None)).rejected == 1
    stranger = await store.record_admission(point(f, "Some Stranger", 3, "rejected"), w1, (0, 1, 1), None)
    assert (stranger.rejected, stranger.suspicious) == (1, 1)
    [bucket_stranger, bucket_a] = await series_of(store).participants(f, 300, T0, at(300))  # by code point
    assert (bucket_a.participant_id, bucket_a.accepted, bucket_a.rejected, bucket_a.mean_train_loss) == ("a", 1, 1, 0.5)
    assert (bucket_stranger.participant_id, bucket_stranger.rejected) == ("Some Stranger", 1)


async def test_a_charge_measures_its_latency_from_the_acceptance_once_and_reports_the_budget(store):
    f, update = fid(), uuid4()
    await store.save_health(FederationHealth(f, 3, None, 0.5, {}))
    await store.record_admission(point(f, "a", 1, "accepted"), Window(T0, at(300)), (1, 0, 0), update)
    assert await store.record_charge(point(f, "a", 4.5, "charged", epsilon=0.1), update) == (3.5, 0.5)
    assert await store.record_charge(point(f, "a", 9, "charged", epsilon=0.2), update) == (None, 0.5)  # taken already
    assert await store.record_charge(point(fid(), "b", 9, "charged"), uuid4()) == (None, None)  # nothing known
    [bucket] = await series_of(store).participants(f, 300, T0, at(300))
    assert (bucket.max_epsilon, bucket.max_latency_s) == (0.2, 3.5)


async def test_round_openings_keep_the_first_time(store):
    f = fid()
    await store.open_round(f, 1, at(5))
    await store.open_round(f, 1, at(9))
    assert await store.round_opened_at(f, 1) == at(5) and await store.round_opened_at(f, 2) is None


async def test_heartbeats_join_once_per_session_and_expire_unless_the_federation_finished(store):
    f, done = fid(), fid()
    await store.save_health(FederationHealth(done, 1, None, None, {}, completed=True))
    assert await store.heartbeat(f, "a", at(0), 10) == 1
    assert await store.heartbeat(f, "a", at(5), 10) is None
    assert await store.heartbeat(f, "b", at(0), 10) == 1
    assert await store.heartbeat(done, "c", at(0), 10) is None  # the runtime's last beats after the end
    gone = [d for d in await store.expire(at(12)) if d.federation_id in (f, done)]
    assert [(d.participant_id, d.session, d.last_seen, d.ttl_s) for d in gone] == [("b", 1, at(0), 10)]
    assert [d for d in await store.expire(at(12)) if d.federation_id in (f, done)] == []  # gone once
    assert await store.heartbeat(f, "b", at(20), 10) == 2


async def test_an_alert_is_claimed_once_by_its_dedup_key(store):
    f = fid()
    raised = alert(AlertKind.SECURITY_BREACH, f, "mallory", Window(at(0), at(300)), 3, 3, "s", at(7), (T0.isoformat(),))
    assert await store.claim_alert(raised)
    assert not await store.claim_alert(raised.model_copy(update={"value": 4.0}))


async def test_round_and_participant_series_bucket_the_same_on_both_stores(store):
    f = fid()
    for r, (seconds, outcome, auc) in enumerate([(10, "validated", 0.7), (70, "failed", None), (130, "validated", 0.8)], 1):
        await store.add_round_point(RoundPoint(at(seconds), f, r, outcome, 2, 30.0 + r, 0.4, 0.6 + r / 100, auc))
    await store.add_round_point(RoundPoint(at(10), fid(), 1, "validated", 2, 1.0))  # another federation
    for seconds, participant, kind, epsilon, loss in [(1, "a", "accepted", None, 0.5), (2, "a", "charged", 0.1, None),
                                                      (3, "b", "rejected", None, None), (65, "a", "accepted", None, 0.3),
                                                      (66, "a", "charged", 0.2, None)]:
        await store.add_participant_point(ParticipantPoint(at(seconds), f, participant, 1, kind, epsilon=epsilon,
                                                           train_loss=loss, latency_s=1.0 if kind == "charged" else None))
    series = series_of(store)
    rounds = await series.rounds(f, 120, T0, at(3600))
    assert rounds == [
        RoundBucket(at(0), 2, 1, 1, pytest.approx(31.5), pytest.approx(0.62), 0.7),
        RoundBucket(at(120), 1, 1, 0, pytest.approx(33.0), pytest.approx(0.63), 0.8),
    ]
    assert await series.rounds(f, 120, at(120), at(3600)) == rounds[1:]
    assert await series.participants(f, 60, T0, at(3600)) == [
        ParticipantBucket(at(0), "a", 1, 0, 0.1, 0.5, 1.0),
        ParticipantBucket(at(0), "b", 0, 1, None, None, None),
        ParticipantBucket(at(60), "a", 1, 0, 0.2, 0.3, 1.0),
    ]


async def test_the_series_are_time_partitioned_and_new_partitions_take_their_rows_from_the_default(pg_pool):
    async with pg_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            timescale = await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
            if timescale:
                hypertables = await conn.fetch("SELECT hypertable_name FROM timescaledb_information.hypertables")
                assert {r["hypertable_name"] for r in hypertables} >= {"round_metrics", "participant_metrics"}
                assert await conn.fetchval("SELECT fedstream_create_metric_partitions('round_metrics')") == 0
                return
            for table in ("round_metrics", "participant_metrics"):
                assert await conn.fetchval("SELECT relkind::text FROM pg_class WHERE relname = $1", table) == "p"
            now_month = await conn.fetchval("SELECT to_char(now(), 'YYYYMM')")
            assert await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"round_metrics_{now_month}")

            f, far = fid(), await conn.fetchval("SELECT date_trunc('month', now() + interval '8 months') + interval '2 days'")
            store = PostgresValidationStore(conn)
            await store.add_round_point(RoundPoint(far, f, 1, "validated", 1, None))  # beyond the partitions made
            assert await conn.fetchval("SELECT count(*) FROM round_metrics_default WHERE federation_id = $1", f) == 1
            assert await conn.fetchval("SELECT fedstream_create_metric_partitions('round_metrics', 9)") >= 1
            far_part = f"round_metrics_{far:%Y%m}"
            assert await conn.fetchval("SELECT count(*) FROM round_metrics_default WHERE federation_id = $1", f) == 0
            assert await conn.fetchval(f"SELECT count(*) FROM {far_part} WHERE federation_id = $1", f) == 1  # noqa: S608
            assert [b.rounds for b in await PostgresMetricsSeries(conn).rounds(f, 86400, far - timedelta(days=1),
                                                                               far + timedelta(days=1))] == [1]
            assert await conn.fetchval("SELECT fedstream_create_metric_partitions('round_metrics', 9)") == 0
        finally:
            await tx.rollback()
