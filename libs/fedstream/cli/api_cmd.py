"""`fedstream api …`: serve the admin/compliance API, and add its users."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from fedstream.settings import StackSettings
from schemas.access import ApiRole

console = Console()
api_app = typer.Typer(help="The admin/compliance API (FastAPI; OpenAPI at /openapi.json).", no_args_is_help=True)
user_app = typer.Typer(help="API users: one bearer token and one TOTP secret each.", no_args_is_help=True)
api_app.add_typer(user_app, name="user")


@api_app.command("serve")
def serve(host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8700)) -> None:
    """Serve the API (uvicorn) against the stack's PostgreSQL and Kafka."""
    from fedstream.api.bootstrap import serve as run

    run(StackSettings().resolved(), host, port)


@api_app.command("openapi")
def openapi() -> None:
    """Write the OpenAPI document to schemas/openapi.json."""
    from fedstream.api.openapi import main

    main()


@user_app.command("add")
def user_add(
    user_id: str = typer.Argument(..., help="an opaque id (lowercase letters, digits, . _ -)"),
    role: ApiRole = typer.Option(..., "--role"),
    tenant: str | None = typer.Option(None, "--tenant", help="the organisation a site_operator acts for"),
) -> None:
    """Add a user; prints its bearer token and TOTP secret once (the token's hash and the sealed secret are stored)."""
    from pydantic import TypeAdapter, ValidationError

    from schemas.base import Identifier

    try:
        TypeAdapter(Identifier).validate_python(user_id)
        if tenant is not None:
            TypeAdapter(Identifier).validate_python(tenant)
    except ValidationError:
        console.print("[red]user id and tenant must be opaque ids: lowercase letters, digits, . _ -[/]")
        raise typer.Exit(2) from None
    if (role is ApiRole.SITE_OPERATOR) != (tenant is not None):
        console.print("[red]--tenant is required for a site_operator, and only for one[/]")
        raise typer.Exit(2)
    credentials = asyncio.run(_add(user_id, role, tenant))
    console.print(f"[green]added {user_id}[/] ({role.value}{f' of {tenant}' if tenant else ''}); shown once:")
    console.print(f"  bearer token: {credentials.token}")
    console.print(f"  TOTP secret:  {credentials.totp_secret}")
    console.print(f"  TOTP URI:     {credentials.provisioning_uri}")


@user_app.command("rotate-totp")
def user_rotate_totp(user_id: str = typer.Argument(..., help="an existing user")) -> None:
    """Issue a user a new TOTP secret (the old one stops working); prints it once. Also how users whose
    plaintext secret migration 020 dropped get a second factor again."""
    from fedstream.api.auth import issue_totp_secret

    secret, uri = issue_totp_secret(user_id)
    if not asyncio.run(_with_directory(lambda users: users.replace_totp_secret(user_id, secret))):
        console.print(f"[red]no API user {user_id}[/]")
        raise typer.Exit(1)
    console.print(f"[green]new TOTP secret for {user_id}[/]; shown once:")
    console.print(f"  TOTP secret:  {secret}")
    console.print(f"  TOTP URI:     {uri}")


async def _add(user_id: str, role: ApiRole, tenant: str | None):  # noqa: ANN202 - IssuedCredentials
    from fedstream.api.auth import issue_credentials, token_hash

    credentials = issue_credentials(user_id)
    await _with_directory(
        lambda users: users.add(user_id, role, tenant, token_hash(credentials.token), credentials.totp_secret)
    )
    return credentials


async def _with_directory(use):  # noqa: ANN001, ANN202 - a coroutine function of a PostgresUserDirectory
    """The user directory on the owner's login (adding users is the owner's; see migration 019), its TOTP
    secrets sealed under the stack's key manager — the one the API opens them with."""
    from fedstream.api.adapters import PostgresUserDirectory
    from fedstream.api.bootstrap import totp_sealer
    from fedstream.storage.postgres import apply_migrations, create_pool

    endpoints = StackSettings().resolved()
    await apply_migrations(endpoints.database_url)
    pool = await create_pool(endpoints.database_url, max_size=1)
    try:
        return await use(PostgresUserDirectory(pool, totp_sealer(endpoints)))
    finally:
        await pool.close()
