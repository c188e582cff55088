"""`fedstream participant keygen|enrol|revoke`, `fedstream consent grant|withdraw`, `fedstream baa register`.

Each command goes to the registry (which owns participants) on ``fedstream.commands``; the CLI waits for
the registry's answer (the fact, or its refusal with a reason) and for ingestion to have applied it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import typer
from rich.console import Console

from fedstream.participant.identity import EnrolmentRefused, ParticipantKeys, issue
from fedstream.security import keyfiles
from fedstream.security.signing import key_id_of, public_key_text
from fedstream.settings import StackSettings
from schemas.base import Event, utcnow
from schemas.identity import ANY_FEDERATION, EnrolParticipant, RecordConsent, RegisterBaa, RevokeParticipantKey
from schemas.topics import OPERATOR

console = Console()
consent_app = typer.Typer(help="Consent records (purpose, scope, expiry): without valid consent, no admission.")
baa_app = typer.Typer(help="Business-associate agreements: a covered entity without an active BAA cannot submit.")


def _issue(command: Event, done: str) -> None:
    try:
        asyncio.run(issue(StackSettings().resolved(), [command]))
    except EnrolmentRefused as refusal:
        console.print(f"[red]refused[/]: {refusal}")
        raise typer.Exit(1) from None
    console.print(done)


def keygen(participant_id: str = typer.Option(..., "--participant")) -> None:
    """Create this participant's Ed25519 key under the state dir (0600), or show the existing one."""
    path = keyfiles.key_path(keyfiles.keys_dir(StackSettings().state_dir), participant_id)
    key, created = keyfiles.load_or_create(path)
    public = public_key_text(key)
    console.print(f"{'created' if created else 'existing'} key {path}\nkey id     {key_id_of(public)}\npublic key {public}")


def enrol(
    participant_id: str = typer.Option(..., "--participant"),
    organisation: str = typer.Option(..., "--organisation", help="the tenant the participant belongs to"),
    public_key: str | None = typer.Option(None, help="default: this machine's key for the participant (keygen)"),
    baa_reference: str | None = typer.Option(None, "--baa-reference"),
    requested_by: str = typer.Option("operator", "--by"),
) -> None:
    """Enrol a participant's public key (a second key for the same participant is a rotation)."""
    public = public_key or ParticipantKeys(keyfiles.keys_dir(StackSettings().state_dir)).public_key(participant_id)
    command = EnrolParticipant(source=OPERATOR, federation_id=organisation, participant_id=participant_id,
                               organisation=organisation, public_key=public, baa_reference=baa_reference,
                               requested_by=requested_by)
    _issue(command, f"[green]enrolled[/] {participant_id} ({organisation}) with key {key_id_of(public)}")


def revoke(
    participant_id: str = typer.Option(..., "--participant"),
    organisation: str = typer.Option(..., "--organisation"),
    key_id: str = typer.Option(..., "--key-id"),
    reason: str = typer.Option("", help="recorded with the revocation"),
    requested_by: str = typer.Option("operator", "--by"),
) -> None:
    """Revoke a participant's key: anything it signs is refused from now on."""
    command = RevokeParticipantKey(source=OPERATOR, federation_id=organisation, participant_id=participant_id,
                                   key_id=key_id, reason=reason, requested_by=requested_by)
    _issue(command, f"[green]revoked[/] key {key_id} of {participant_id}")


def _consent(participant_id: str, organisation: str, scope: str, days: int, granted: bool, requested_by: str) -> None:
    command = RecordConsent(source=OPERATOR, federation_id=organisation, participant_id=participant_id, scope=scope,
                            expires_at=utcnow() + timedelta(days=days), granted=granted, requested_by=requested_by)
    _issue(command, f"[green]consent {'granted' if granted else 'withdrawn'}[/] for {participant_id} in {scope}")


@consent_app.command("grant")
def consent_grant(
    participant_id: str = typer.Option(..., "--participant"),
    organisation: str = typer.Option(..., "--organisation"),
    scope: str = typer.Option(ANY_FEDERATION, help="a federation id, or * for every federation"),
    days: int = typer.Option(365, min=1, help="the consent expires after this many days"),
    requested_by: str = typer.Option("dpo", "--by"),
) -> None:
    """Record consent to federated training within a scope, until it expires."""
    _consent(participant_id, organisation, scope, days, True, requested_by)


@consent_app.command("withdraw")
def consent_withdraw(
    participant_id: str = typer.Option(..., "--participant"),
    organisation: str = typer.Option(..., "--organisation"),
    scope: str = typer.Option(ANY_FEDERATION),
    requested_by: str = typer.Option("dpo", "--by"),
) -> None:
    """Withdraw consent: the participant's submissions in that scope are refused from now on."""
    _consent(participant_id, organisation, scope, 1, False, requested_by)


@baa_app.command("register")
def baa_register(
    organisation: str = typer.Option(..., "--organisation"),
    reference: str = typer.Option(..., "--reference", help="the agreement's reference (no contents)"),
    days: int = typer.Option(365, min=1),
    active: bool = typer.Option(True, help="--no-active records a terminated agreement"),
    requested_by: str = typer.Option("dpo", "--by"),
) -> None:
    """Record an organisation's business-associate agreement."""
    command = RegisterBaa(source=OPERATOR, federation_id=organisation, organisation=organisation, reference=reference,
                          expires_at=utcnow() + timedelta(days=days), active=active, requested_by=requested_by)
    _issue(command, f"[green]BAA {reference}[/] {'active' if active else 'inactive'} for {organisation}")
