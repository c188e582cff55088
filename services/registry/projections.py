"""Read views from events alone: each projection is an idempotent upsert keyed by the event's facts.

Rows carry event times, never ``now()``, so a replay into an empty database writes identical rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from schemas import events as ev
from schemas.base import Event

Projection = Callable[[asyncpg.Connection, Event], Awaitable[None]]


async def federation_created(conn: asyncpg.Connection, e: ev.FederationCreated) -> None:
    spec = e.spec
    await conn.execute(
        "INSERT INTO federations (federation_id, project_name, use_case, crypto, spec, created_at) "
        "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
        e.federation_id, spec.project_name, spec.use_case.value, spec.crypto.value, spec.model_dump(mode="json"), e.time,
    )
    await conn.executemany(
        "INSERT INTO participants (federation_id, participant_id, organisation, kind, enrolled_at) VALUES ($1,$2,$3,$4,$5) "
        "ON CONFLICT DO NOTHING",
        [(e.federation_id, p.participant_id, p.organisation, p.kind, e.time) for p in spec.participants],
    )
    await conn.execute(
        "INSERT INTO models (model_id, federation_id, architecture, spec, params, status, created_at, updated_at) "
        "VALUES ($1,$1,$2,$3,$4,'training',$5,$5) ON CONFLICT DO NOTHING",
        e.federation_id, spec.model.architecture, spec.model.model_dump(mode="json"),
        [p.model_dump(mode="json") for p in e.params], e.time,
    )
    await _version(conn, e.federation_id, 0, None, e.initial_model, None, e.time)


async def round_opened(conn: asyncpg.Connection, e: ev.RoundOpened) -> None:
    await _round(conn, e, model_version=e.model_version, quorum=e.quorum, deadline=e.deadline,
                 participants=list(e.participants), opened_at=e.time)


async def model_released(conn: asyncpg.Connection, e: ev.ModelReleased) -> None:
    await _version(conn, e.federation_id, e.model_version, e.round, e.model, e.metrics.model_dump(mode="json"), e.time)
    await conn.executemany(
        "INSERT INTO model_lineage (model_id, version, update_id, participant_id, num_examples, sha256) "
        "VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
        [(e.federation_id, e.model_version, c.update_id, c.participant_id, c.num_examples, c.sha256) for c in e.contributions],
    )
    await conn.execute(
        "UPDATE models SET updated_at = greatest(updated_at, $2) WHERE model_id = $1", e.federation_id, e.time
    )
    await _round(conn, e, released_version=e.model_version, released_at=e.time)


async def federation_completed(conn: asyncpg.Connection, e: ev.FederationCompleted) -> None:
    await conn.execute(
        "UPDATE federations SET completed_at = $2, completion_reason = $3, rounds_run = $4, final_model_version = $5 "
        "WHERE federation_id = $1",
        e.federation_id, e.time, e.reason.value, e.rounds, e.final_model_version,
    )
    await conn.execute(
        "UPDATE models SET status = 'completed', updated_at = greatest(updated_at, $2) WHERE model_id = $1",
        e.federation_id, e.time,
    )


async def update_accepted(conn: asyncpg.Connection, e: ev.UpdateAccepted) -> None:
    await conn.execute(
        "INSERT INTO updates (update_id, federation_id, round, participant_id, sha256, size, num_examples, train_loss, accepted_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
        e.update_id, e.federation_id, e.round, e.participant_id, e.update.sha256, e.update.size, e.num_examples,
        e.train_loss, e.time,
    )


async def update_rejected(conn: asyncpg.Connection, e: ev.UpdateRejected) -> None:
    await conn.execute(
        "INSERT INTO update_rejections (event_id, update_id, federation_id, round, participant_id, reason, detail, rejected_by, rejected_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
        e.event_id, e.update_id, e.federation_id, e.round, e.participant_id, e.reason.value, e.detail, e.source, e.time,
    )


async def budget_exhausted(conn: asyncpg.Connection, e: ev.BudgetExhausted) -> None:
    """A privacy refusal is a rejection of that update, visible next to the others."""
    await conn.execute(
        "INSERT INTO update_rejections (event_id, update_id, federation_id, round, participant_id, reason, detail, rejected_by, rejected_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT DO NOTHING",
        e.event_id, e.update_id, e.federation_id, e.round, e.participant_id, f"privacy_{e.reason.value}", e.detail,
        e.source, e.time,
    )


async def round_aggregated(conn: asyncpg.Connection, e: ev.RoundAggregated) -> None:
    await _round(conn, e, aggregated_at=e.time, closed_by=e.closed_by, aggregate_sha256=e.aggregate.sha256,
                 contributors=len(e.contributions))


async def round_failed(conn: asyncpg.Connection, e: ev.RoundFailed) -> None:
    await _round(conn, e, failed_at=e.time, failure_reason=e.reason)


async def model_validated(conn: asyncpg.Connection, e: ev.ModelValidated) -> None:
    await _round(conn, e, validated_at=e.time, metrics=e.metrics.model_dump(mode="json"))


async def model_rejected(conn: asyncpg.Connection, e: ev.ModelRejected) -> None:
    metrics = e.metrics.model_dump(mode="json") if e.metrics else None
    await _round(conn, e, rejected_at=e.time, rejection_gate=e.gate.value, metrics=metrics)


PROJECTIONS: dict[type[Event], Projection] = {
    ev.FederationCreated: federation_created,
    ev.RoundOpened: round_opened,
    ev.ModelReleased: model_released,
    ev.FederationCompleted: federation_completed,
    ev.UpdateAccepted: update_accepted,
    ev.UpdateRejected: update_rejected,
    ev.BudgetExhausted: budget_exhausted,
    ev.RoundAggregated: round_aggregated,
    ev.RoundFailed: round_failed,
    ev.ModelValidated: model_validated,
    ev.ModelRejected: model_rejected,
}

# Tables rebuilt by replay; the replay test compares exactly these.
VIEW_TABLES = ("federations", "participants", "models", "model_versions", "model_lineage", "rounds", "updates", "update_rejections")


async def project(conn: asyncpg.Connection, event: Event) -> None:
    projection = PROJECTIONS.get(type(event))
    if projection is not None:
        await projection(conn, event)


async def _round(conn: asyncpg.Connection, e: Event, **columns: object) -> None:
    names = list(columns)
    placeholders = ", ".join(f"${i + 3}" for i in range(len(names)))
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names)
    await conn.execute(
        f"INSERT INTO rounds (federation_id, round, {', '.join(names)}) VALUES ($1, $2, {placeholders}) "  # noqa: S608 - names are code constants
        f"ON CONFLICT (federation_id, round) DO UPDATE SET {updates}",
        e.federation_id, e.round, *columns.values(),  # type: ignore[attr-defined]
    )


async def _version(conn, model_id, version, round_number, blob, metrics, at) -> None:  # noqa: ANN001
    await conn.execute(
        "INSERT INTO model_versions (model_id, version, round, blob_uri, sha256, size, metrics, released_at) "
        "VALUES ($1,$2,$3,$4,$5,$6,$7,$8) ON CONFLICT DO NOTHING",
        model_id, version, round_number, blob.uri, blob.sha256, blob.size, metrics, at,
    )
