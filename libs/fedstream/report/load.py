"""Read a federation's report data from the registry's and the privacy ledger's PostgreSQL views.

The queries return rows; small pure functions turn rows into the report model, so that translation is
unit-tested with dicts and only the SQL needs the real database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import asyncpg

from fedstream.report.model import EpsilonPoint, ParticipantHealth, ReportData, RoundPoint

Row = Mapping[str, Any]

_FEDERATION = """
SELECT federation_id, project_name, spec, completed_at, completion_reason
FROM federations WHERE ($1::text IS NULL OR federation_id = $1) ORDER BY created_at DESC LIMIT 1
"""
_ROUNDS = "SELECT round, status, metrics, duration_s FROM round_status WHERE federation_id = $1 ORDER BY round"
# ε is the participant's cumulative ε once the update counted; one update per participant and round, but
# max() keeps the query honest should a participant ever be charged twice in a round.
_EPSILON = """
SELECT participant_id, round, max(epsilon) AS epsilon FROM privacy_ledger
WHERE federation_id = $1 AND epsilon IS NOT NULL GROUP BY participant_id, round ORDER BY participant_id, round
"""
_ENROLLED = "SELECT participant_id FROM participants WHERE federation_id = $1 ORDER BY participant_id"
_ACCEPTED = "SELECT participant_id, count(*) AS n FROM updates WHERE federation_id = $1 GROUP BY participant_id"
_REJECTED = """
SELECT participant_id, reason, count(*) AS n FROM update_rejections WHERE federation_id = $1
GROUP BY participant_id, reason
"""


class NoFederation(LookupError):
    """The database holds no federation (of that id)."""


async def load_report(conn: asyncpg.Connection, federation_id: str | None = None) -> ReportData:
    """Everything the report shows about ``federation_id`` (default: the most recently created federation)."""
    federation = await conn.fetchrow(_FEDERATION, federation_id)
    if federation is None:
        raise NoFederation(f"no federation {federation_id!r}" if federation_id else "no federation yet")
    fid = federation["federation_id"]
    metric_name = (federation["spec"].get("validation") or {}).get("metric", "auc")
    return ReportData(
        federation_id=fid,
        project_name=federation["project_name"],
        state=federation_state(federation),
        metric_name=metric_name,
        generated_at=datetime.now(timezone.utc),
        rounds=round_points(await conn.fetch(_ROUNDS, fid), metric_name),
        epsilon=epsilon_points(await conn.fetch(_EPSILON, fid)),
        health=participant_health(
            [r["participant_id"] for r in await conn.fetch(_ENROLLED, fid)],
            await conn.fetch(_ACCEPTED, fid),
            await conn.fetch(_REJECTED, fid),
        ),
    )


def federation_state(federation: Row) -> str:
    if federation["completed_at"] is None:
        return "training"
    return f"completed ({federation['completion_reason']})"


def round_points(rows: Iterable[Row], metric_name: str) -> tuple[RoundPoint, ...]:
    return tuple(
        RoundPoint(
            round=r["round"],
            status=r["status"],
            metric=_float((r["metrics"] or {}).get(metric_name)),
            loss=_float((r["metrics"] or {}).get("loss")),
            # extract(epoch …) is numeric (a Decimal) in PostgreSQL ≥ 14
            duration_s=_float(r["duration_s"]),
        )
        for r in rows
    )


def epsilon_points(rows: Iterable[Row]) -> tuple[EpsilonPoint, ...]:
    return tuple(EpsilonPoint(r["participant_id"], r["round"], float(r["epsilon"])) for r in rows)


def participant_health(enrolled: Iterable[str], accepted: Iterable[Row], rejected: Iterable[Row]) -> tuple[ParticipantHealth, ...]:
    """Accepted and rejected updates per participant: every enrolled one (zeros included, a silent site is
    news), plus any sender that was rejected without being enrolled (that is a security signal)."""
    accepted_by = {r["participant_id"]: int(r["n"]) for r in accepted}
    reasons: dict[str, Counter[str]] = {}
    for r in rejected:
        reasons.setdefault(r["participant_id"], Counter())[r["reason"]] += int(r["n"])
    ids = sorted(set(enrolled) | set(accepted_by) | set(reasons))
    return tuple(
        ParticipantHealth(
            participant_id=pid,
            accepted=accepted_by.get(pid, 0),
            rejected=sum(reasons.get(pid, Counter()).values()),
            rejection_reasons=dict(sorted(reasons.get(pid, Counter()).items())),
        )
        for pid in ids
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
