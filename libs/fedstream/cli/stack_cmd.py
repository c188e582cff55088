"""`fedstream stack up | down | status`: the embedded Kafka + PostgreSQL + Redis stack."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from fedstream.messaging.kafka import ensure_topics
from fedstream.settings import Endpoints, StackSettings
from fedstream.storage.postgres import apply_migrations

app = typer.Typer(help="Start, stop and inspect the local stack (Apache Kafka KRaft, PostgreSQL, Redis).")
console = Console()


def bring_up(settings: StackSettings) -> Endpoints:
    """Start (or reuse) the stack, apply migrations, create topics. Idempotent."""
    from fedstream.stack import LocalStack

    LocalStack(settings).up()
    endpoints = settings.resolved()
    asyncio.run(_provision(endpoints))
    return endpoints


async def _provision(endpoints: Endpoints) -> None:
    await apply_migrations(endpoints.database_url)
    await ensure_topics(endpoints.kafka_bootstrap_servers)


@app.command()
def up() -> None:
    """Start the stack (reusing anything already running), migrate the database, create the topics."""
    with console.status("starting Kafka, PostgreSQL and Redis…"):
        endpoints = bring_up(StackSettings())
    console.print(f"[green]stack up[/]: kafka {endpoints.kafka_bootstrap_servers} ({endpoints.kafka_flavour}), "
                  f"postgres {endpoints.database_url}, redis {endpoints.redis_url}")
    status()


@app.command()
def down(purge: bool = typer.Option(False, help="also delete the stack's data")) -> None:
    """Stop what `stack up` started (external servers are left alone)."""
    from fedstream.stack import LocalStack

    LocalStack(StackSettings()).down(purge=purge)
    console.print("[green]stack down[/]")


@app.command()
def status() -> None:
    """What runs where."""
    from fedstream.stack import LocalStack

    table = Table(title="fedstream stack")
    for column in ("component", "kind", "address", "pid", "state", "managed by"):
        table.add_column(column)
    for c in LocalStack(StackSettings()).status():
        state = "[green]running[/]" if c.running else "[red]stopped[/]"
        table.add_row(c.name, c.kind, c.address or "-", str(c.pid or "-"), state, "fedstream" if c.started_by_us else "external")
    console.print(table)
