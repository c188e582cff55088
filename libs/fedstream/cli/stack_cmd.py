"""`fedstream stack up | down | status`: the embedded Kafka + PostgreSQL + Redis stack."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from fedstream.connection_security import redacted
from fedstream.messaging.kafka import align_topic_configs, ensure_topics
from fedstream.settings import Endpoints, StackSettings, logins_apart_from
from fedstream.storage.postgres import prepare_database

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
    await prepare_database(endpoints.database_url, endpoints.login_urls)  # as the owner, before any service starts
    await ensure_topics(endpoints)
    await align_topic_configs(endpoints)  # topics an older version created get today's retention too


@app.command()
def up() -> None:
    """Start the stack (reusing anything already running), migrate the database, create the topics."""
    with console.status("starting Kafka, PostgreSQL and Redis…"):
        endpoints = bring_up(StackSettings())
    console.print(f"[green]stack up[/]: kafka {endpoints.kafka_bootstrap_servers} ({endpoints.kafka_flavour}), "
                  f"postgres {redacted(endpoints.database_url)}, redis {redacted(endpoints.redis_url)}")
    status()


@app.command()
def migrate() -> None:
    """As the owner (FEDSTREAM_DATABASE_URL): apply the migrations, then set the application logins'
    passwords (FEDSTREAM_APP_DATABASE_PASSWORD, FEDSTREAM_API_DATABASE_PASSWORD) where given.

    What a deployment runs once before the services (compose: the `migrate` job); they only wait for it."""
    urls = StackSettings().resolved_database()
    owner = urls["database_url"]
    applied = asyncio.run(prepare_database(owner, logins_apart_from(owner, urls["app_database_url"], urls["api_database_url"])))
    console.print(f"[green]migrated[/] {redacted(owner)}: "
                  f"{', '.join(applied) if applied else 'nothing new'}")


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


@app.command("kafka-login")
def kafka_login(participant_id: str = typer.Argument(..., help="the participant to give a Kafka login")) -> None:
    """A participant's own SCRAM login and ACLs on a secured local stack (FEDSTREAM_KAFKA_SECURITY=sasl_ssl).

    Prints the settings the participant runtime needs; the password stays in the state dir's 0600 logins file."""
    from fedstream.stack import LocalStack
    from fedstream.stack.kafka_security import SecuredKafkaFiles

    local = LocalStack(StackSettings())
    login = local.add_kafka_participant(participant_id)
    logins_file = SecuredKafkaFiles(local.state_dir / "kafka").logins_path
    console.print(f"[green]Kafka login[/] {login.username}: may write submissions, heartbeats and evaluations, "
                  f"and read rounds and outcomes (ACLs from schemas/topics.py)")
    console.print(f"  FEDSTREAM_KAFKA_USERNAME={login.username}")
    console.print(f"  FEDSTREAM_KAFKA_PASSWORD=<\"{login.username}\".password in {logins_file}>")
