"""`fedstream gdpr erase|export`: the right to be forgotten and data portability (GDPR art. 17, 20)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import typer
from rich.console import Console

from fedstream.settings import Endpoints, StackSettings
from fedstream.storage.postgres import connect

console = Console()
gdpr_app = typer.Typer(help="GDPR: erase a participant (crypto-shredding), export what is held about one.")


@gdpr_app.command("erase")
def erase(
    participant_id: str = typer.Argument(..., help="the participant to erase"),
    reason: str = typer.Option("", help="recorded with the request"),
    requested_by: str = typer.Option("operator", "--requested-by"),
    wait: bool = typer.Option(True, help="wait for the erasure certificate"),
    timeout_s: float = typer.Option(120.0, "--timeout"),
) -> None:
    """Ask compliance to erase a participant: personal data removed or pseudonymised, blobs shredded,
    excluded from later rounds; prints the certificate."""
    endpoints = StackSettings().resolved()
    request_id = asyncio.run(request_erasure(endpoints, participant_id, reason, requested_by))
    console.print(f"erasure requested ({request_id})")
    if wait:
        certificate = asyncio.run(wait_for_certificate(endpoints, request_id, timeout_s))
        console.print_json(json.dumps(certificate))


@gdpr_app.command("export")
def export(
    participant_id: str = typer.Argument(...),
    output: Path | None = typer.Option(None, "-o", "--output", help="default: standard output"),
) -> None:
    """Everything held about a participant, as one JSON bundle."""
    bundle = asyncio.run(export_bundle(StackSettings().resolved(), participant_id))
    text = json.dumps(bundle, indent=2, default=str)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text)
        console.print(f"wrote {output} ({sum(len(r) for r in bundle['tables'].values())} rows)")


async def request_erasure(endpoints: Endpoints, participant_id: str, reason: str = "", requested_by: str = "operator") -> UUID:
    from fedstream.messaging.codec import encode
    from fedstream.messaging.kafka import make_producer, send_records
    from schemas.compliance import ERASURE_SCOPE, EraseParticipant
    from schemas.topics import COMMANDS, OPERATOR

    command = EraseParticipant(
        source=OPERATOR, federation_id=ERASURE_SCOPE, participant_id=participant_id, reason=reason, requested_by=requested_by
    )
    producer = make_producer(endpoints, "fedstream-cli")
    await producer.start()
    try:
        await send_records(producer, [encode(command, COMMANDS.name)])
    finally:
        await producer.stop()
    return command.event_id


async def wait_for_certificate(endpoints: Endpoints, request_id: UUID, timeout_s: float = 120.0) -> dict[str, Any]:
    """The certificate compliance recorded for this request (polled with a deadline)."""
    conn = await connect(endpoints.database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            raw = await conn.fetchval("SELECT certificate::text FROM erasures WHERE request_id = $1", request_id)
            if raw is not None:
                return json.loads(raw)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no erasure certificate for {request_id} within {timeout_s}s (is compliance running?)")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def export_bundle(endpoints: Endpoints, participant_id: str) -> dict[str, Any]:
    from fedstream.security.keys import open_key_manager
    from services.compliance.export import export_participant

    keys = open_key_manager(endpoints.key_manager_url) if endpoints.key_manager_url else None
    conn = await connect(endpoints.database_url)
    try:
        return await export_participant(conn, participant_id, keys)
    finally:
        await conn.close()
