"""Looking at a federation: status, the audit trail, the views."""

from __future__ import annotations

import asyncio
import time

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fedstream.cli import audit_cmd
from fedstream.settings import StackSettings
from fedstream.storage.coordination import RedisCoordination
from fedstream.storage.postgres import connect

console = Console()
audit_app = typer.Typer(help="The hash-chained audit trail and its signed Merkle checkpoints.")
views_app = typer.Typer(help="The registry's read views, materialised from the event stream.")


@views_app.command("replay")
def views_replay(database_url: str = typer.Option(..., help="an empty database to rebuild the views into")) -> None:
    """Replay every topic into DATABASE_URL's views (the same projections the registry applies live)."""
    from services.registry.replay import replay_views

    count = asyncio.run(replay_views(StackSettings().resolved(), database_url))
    console.print(f"[green]projected {count} events[/] into {database_url}")


def status(
    federation_id: str | None = typer.Option(None, "--federation", help="default: the most recent"),
    watch: float = typer.Option(0, help="refresh every N seconds as a live terminal dashboard (Ctrl-C stops)"),
) -> None:
    """Rounds, participants (live ones from Redis) and the latest model of a federation."""
    if not watch:
        console.print(asyncio.run(status_view(federation_id)))
        return
    with Live(console=console, screen=False, auto_refresh=False) as live:
        try:
            while True:
                live.update(asyncio.run(status_view(federation_id)), refresh=True)
                time.sleep(watch)
        except KeyboardInterrupt:
            pass


async def status_view(federation_id: str | None) -> RenderableType:
    endpoints = StackSettings().resolved()
    conn = await connect(endpoints.database_url)
    try:
        federation = await conn.fetchrow(
            "SELECT * FROM federations WHERE ($1::text IS NULL OR federation_id = $1) ORDER BY created_at DESC LIMIT 1",
            federation_id,
        )
        if federation is None:
            return Text("no federation yet: `fedstream federation create SPEC` or `fedstream demo`")
        fid = federation["federation_id"]
        state = f"completed ({federation['completion_reason']})" if federation["completed_at"] else "training"
        rounds = await conn.fetch("SELECT * FROM round_status WHERE federation_id = $1 ORDER BY round", fid)
        enrolled = await conn.fetchval("SELECT count(*) FROM participants WHERE federation_id = $1", fid)
        latest = await conn.fetchrow(
            "SELECT version, sha256, released_at FROM model_versions WHERE model_id = $1 ORDER BY version DESC LIMIT 1", fid
        )
    finally:
        await conn.close()
    live = await _live(endpoints.redis_url, fid)
    parts: list[RenderableType] = [
        Text.from_markup(f"[bold]{fid}[/] — {federation['project_name']} — {state}"),
        _rounds_table(rounds),
        Text(f"participants: {enrolled} enrolled, {len(live)} live (heartbeat within TTL)"),
    ]
    if latest:
        parts.append(Text(f"latest model: v{latest['version']} sha256 {latest['sha256'][:16]}… "
                          f"released {latest['released_at']:%Y-%m-%d %H:%M:%S}"))
    return Group(*parts)


def _rounds_table(rounds: list) -> Table:  # noqa: ANN001 - asyncpg records of round_status
    table = Table(title="rounds")
    for column in ("round", "status", "contributors", "auc", "accuracy", "duration"):
        table.add_column(column)
    for r in rounds:
        m = r["metrics"] or {}
        auc = m.get("auc")
        table.add_row(
            str(r["round"]), r["status"], str(r["contributors"] or "-"), "-" if auc is None else f"{auc:.4f}",
            "-" if "accuracy" not in m else f"{m['accuracy']:.4f}", "-" if r["duration_s"] is None else f"{r['duration_s']:.2f}s",
        )
    return table


async def _live(redis_url: str, federation_id: str) -> set[str]:
    coordination = RedisCoordination.from_url(redis_url)
    try:
        return await coordination.live_participants(federation_id)
    finally:
        await coordination.close()


audit_app.command("verify")(audit_cmd.verify)
audit_app.command("checkpoints")(audit_cmd.checkpoints)
