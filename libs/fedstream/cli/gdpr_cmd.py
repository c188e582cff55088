"""`fedstream gdpr erase|status|erasures|export`: the right to be forgotten and data portability (GDPR art. 17, 20).

An erasure is complete once its key is destroyed (``shredding``: ``complete``); until then it is ``pending``
(the compliance service finishes it on its own, see services/compliance/erasure.py). ``unknown``: an erasure
made before migration 020, which did not record it (repeat the request to be sure: it is idempotent).
"""

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
        status = asyncio.run(wait_for_shredding(endpoints, request_id, timeout_s))
        console.print(f"key destroyed at {status['keys_destroyed_at']}; {kafka_summary(status)}")


@gdpr_app.command("status")
def status(request_id: UUID = typer.Argument(..., help="the erasure request id `gdpr erase` printed")) -> None:
    """An erasure's certificate, whether its key is destroyed yet, and until when Kafka holds copies."""
    found = asyncio.run(erasure_status(StackSettings().resolved(), request_id))
    if found is None:
        console.print(f"[red]no erasure recorded for {request_id}[/]")
        raise typer.Exit(1)
    console.print_json(json.dumps(found, default=str))


@gdpr_app.command("erasures")
def erasures() -> None:
    """Every erasure carried out: when, under which pseudonym, and whether its shredding is complete."""
    for e in asyncio.run(all_erasures(StackSettings().resolved())):
        colour = {"complete": "green", "pending": "yellow"}.get(e["shredding"], "red")
        console.print(f"{e['request_id']}  {e['erased_at']}  {e['pseudonym']}  [{colour}]{e['shredding']}[/]  {kafka_summary(e)}")


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


STATUS = """
SELECT e.request_id, e.pseudonym, e.erased_at, e.keys_destroyed_at, e.certificate::text AS certificate,
       EXISTS (SELECT 1 FROM erasure_pending_keys p WHERE p.pseudonym = e.pseudonym) AS pending
FROM erasures e
"""


def shredding_state(keys_destroyed_at: Any, pending: bool) -> str:
    if keys_destroyed_at is not None:
        return "complete"
    return "pending" if pending else "unknown"


def _status(row: Any) -> dict[str, Any]:
    certificate = json.loads(row["certificate"])
    copies = certificate.get("kafka_copies", [])
    expiries = [c["expires_by"] for c in copies]
    return {
        "request_id": str(row["request_id"]), "pseudonym": row["pseudonym"], "erased_at": row["erased_at"].isoformat(),
        "shredding": shredding_state(row["keys_destroyed_at"], row["pending"]),
        "keys_destroyed_at": row["keys_destroyed_at"].isoformat() if row["keys_destroyed_at"] else None,
        # When the last broker copy naming the participant is gone; None: some topic keeps them for ever.
        "kafka_copies_gone_by": (max(expiries) if expiries and None not in expiries else None),
        "kafka_copies_kept_forever": [c["topic"] for c in copies if c["expires_by"] is None],
        "certificate": certificate,
    }


def kafka_summary(status: dict[str, Any]) -> str:
    if status["kafka_copies_kept_forever"]:
        return f"Kafka keeps copies for ever on {', '.join(status['kafka_copies_kept_forever'])}"
    if status["kafka_copies_gone_by"] is None:
        return "Kafka copies: not certified (an erasure made before they were)"
    return f"Kafka copies gone by {status['kafka_copies_gone_by']}"


async def erasure_status(endpoints: Endpoints, request_id: UUID) -> dict[str, Any] | None:
    conn = await connect(endpoints.database_url)
    try:
        row = await conn.fetchrow(STATUS + " WHERE e.request_id = $1", request_id)
    finally:
        await conn.close()
    return None if row is None else _status(row)


async def all_erasures(endpoints: Endpoints) -> list[dict[str, Any]]:
    conn = await connect(endpoints.database_url)
    try:
        return [_status(r) for r in await conn.fetch(STATUS + " ORDER BY e.erased_at")]
    finally:
        await conn.close()


async def wait_for_shredding(endpoints: Endpoints, request_id: UUID, timeout_s: float = 120.0) -> dict[str, Any]:
    """The erasure's status once its key is destroyed (polled with a deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = await erasure_status(endpoints, request_id)
        if found is not None and found["shredding"] == "complete":
            return found
        if time.monotonic() > deadline:
            state = "no erasure" if found is None else found["shredding"]
            raise TimeoutError(f"erasure {request_id}: key not destroyed within {timeout_s}s ({state}; is compliance running?)")
        await asyncio.sleep(0.5)


async def export_bundle(endpoints: Endpoints, participant_id: str) -> dict[str, Any]:
    from fedstream.security.keys import open_key_manager
    from services.compliance.export import export_participant

    keys = open_key_manager(endpoints.key_manager_url) if endpoints.key_manager_url else None
    conn = await connect(endpoints.database_url)
    try:
        return await export_participant(conn, participant_id, keys)
    finally:
        await conn.close()
