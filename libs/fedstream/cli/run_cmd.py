"""Running things: the services, a participant, a simulated federation, the demo."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from fedstream.cli.render import released_table, round_table
from fedstream.participant.simulation import create_federation, local_participants, simulate
from fedstream.settings import StackSettings
from fedstream.supervisor import Supervisor, module_of
from schemas.federation import FederationSpec, SpecError, parse_spec
from schemas.topics import KEY_CUSTODY, SERVICES

console = Console()
DEFAULT_DEMO_SPEC = Path(__file__).resolve().parents[3] / "examples" / "federations" / "hospitals-15.yaml"


def load_spec(path: Path, federation_id: str | None = None) -> FederationSpec:
    try:
        spec = parse_spec(path.read_text())
    except (SpecError, OSError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    return spec.model_copy(update={"federation_id": federation_id}) if federation_id else spec


def service(name: str = typer.Argument(..., help=f"one of: {', '.join((*SERVICES, KEY_CUSTODY))}")) -> None:
    """Run one service in this process (what each container runs)."""
    if name not in (*SERVICES, KEY_CUSTODY):
        console.print(f"[red]unknown service {name!r}[/]; choose one of {', '.join((*SERVICES, KEY_CUSTODY))}")
        raise typer.Exit(2)
    importlib.import_module(f"{module_of(name)}.bootstrap").main()


def services() -> None:
    """Run the six services and the key custodian as supervised processes until Ctrl-C."""
    settings = StackSettings()
    supervisor = _start_services(settings)
    console.print(f"six services and the key custodian running; logs in {settings.state_dir / 'logs'}. Ctrl-C stops them.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()


def federation_create(spec_path: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Validate a federation spec (seed §7.2) and ask the registry to create it."""
    spec = load_spec(spec_path)
    asyncio.run(create_federation(StackSettings().resolved(), spec))
    console.print(f"[green]requested federation {spec.federation_id}[/] ({len(spec.participants)} participants)")


def participant(
    spec_path: Path = typer.Option(..., "--spec", exists=True, dir_okay=False),
    participant_id: str = typer.Option(..., "--participant"),
) -> None:
    """Join a federation as one participant, with that site's local data, until the federation completes."""
    from fedstream.messaging.kafka import make_consumer, make_producer
    from fedstream.participant.runtime import ParticipantRuntime
    from fedstream.storage.envelope import blob_store_for
    from schemas.topics import PARTICIPANT, topics_consumed_by

    spec = load_spec(spec_path)
    _trace_participants()
    local = [p for p in local_participants(spec) if p.participant_id == participant_id]
    if not local:
        console.print(f"[red]{participant_id!r} is not a participant of {spec.federation_id}[/]")
        raise typer.Exit(2)
    endpoints = StackSettings().resolved()

    async def run() -> None:
        consumer = make_consumer(endpoints, f"fedstream-participant-{participant_id}", topics_consumed_by(PARTICIPANT), participant_id)
        producer = make_producer(endpoints, participant_id)
        await consumer.start()
        await producer.start()
        try:
            await ParticipantRuntime(spec.federation_id, local, consumer, producer, blob_store_for(endpoints)).run()
        finally:
            await consumer.stop()
            await producer.stop()

    asyncio.run(run())


def simulate_cmd(
    spec_path: Path = typer.Argument(DEFAULT_DEMO_SPEC, exists=True, dir_okay=False),
    federation_id: str | None = typer.Option(None, help="override the spec's federation id"),
    create: bool = typer.Option(True, help="publish the CreateFederation command first"),
) -> None:
    """Run every participant of a spec in this process, to completion, and print the rounds."""
    spec = load_spec(spec_path, federation_id)
    _run_simulation(spec, create)


def demo(
    spec_path: Path = typer.Option(DEFAULT_DEMO_SPEC, "--spec", exists=True, dir_okay=False),
    keep_running: bool = typer.Option(False, help="leave the stack and services up afterwards"),
) -> None:
    """The main job: stack up, six services + key custodian, 15 simulated hospitals to convergence, a per-round table."""
    from fedstream.cli.stack_cmd import bring_up

    settings = StackSettings()
    with console.status("starting the stack (Apache Kafka KRaft, PostgreSQL, Redis)…"):
        endpoints = bring_up(settings)
    console.print(f"[green]stack up[/]: kafka {endpoints.kafka_bootstrap_servers} ({endpoints.kafka_flavour}), "
                  f"postgres {endpoints.database_url}, redis {endpoints.redis_url}")
    supervisor = _start_services(settings)
    console.print(f"[green]six services and the key custodian started[/] as separate processes; logs in {settings.state_dir / 'logs'}")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    spec = load_spec(spec_path, f"{load_spec(spec_path).federation_id}-{stamp}")
    try:
        _run_simulation(spec, create=True)
    finally:
        if not keep_running:
            supervisor.stop()
    console.print(
        "\nInspect it:\n"
        "  fedstream status                 # rounds, participants, latest model\n"
        "  fedstream audit verify           # walk the hash-chained audit trail\n"
        f"  psql '{endpoints.database_url}' -c 'SELECT * FROM round_status'\n"
        "  fedstream stack down             # stop Kafka, PostgreSQL and Redis"
    )


def _run_simulation(spec: FederationSpec, create: bool) -> None:
    endpoints = StackSettings().resolved()
    _trace_participants()
    console.print(f"federation [bold]{spec.federation_id}[/]: {len(spec.participants)} participants, "
                  f"up to {spec.training.rounds} rounds, data {spec.data.dataset}")

    def on_event(event) -> None:  # noqa: ANN001
        from schemas import events as ev

        if isinstance(event, ev.ModelReleased):
            m = event.metrics
            console.print(f"  round {event.round:>3}: released v{event.model_version}  auc "
                          f"{'n/a' if m.auc is None else f'{m.auc:.4f}'}  acc {m.accuracy:.4f}  loss {m.loss:.4f}")
        elif isinstance(event, ev.RoundFailed):
            console.print(f"  round {event.round:>3}: failed ({event.received}/{event.quorum} updates)")

    result = asyncio.run(simulate(endpoints, spec, create=create, on_event=on_event))
    console.print(round_table(result.progress, spec.validation.metric))
    console.print(released_table(result.progress))
    done = result.progress.completed
    if done is not None:
        console.print(f"[green]federation completed[/]: {done.reason.value} after {done.rounds} rounds, "
                      f"final model v{done.final_model_version}; {result.wall_s:.1f}s wall, {result.rejected} rejected updates")


def _trace_participants() -> None:
    from fedstream.observability.settings import ObservabilitySettings
    from fedstream.observability.tracing import setup_tracing

    setup_tracing("participant", ObservabilitySettings())


def _start_services(settings: StackSettings) -> Supervisor:
    env = dict(os.environ, FEDSTREAM_STATE_DIR=str(settings.state_dir.resolve()))
    supervisor = Supervisor(settings.state_dir / "logs", env=env)
    supervisor.start()
    return supervisor
