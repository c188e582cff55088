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
    """Add a user; prints its bearer token and TOTP secret once (only the token's hash is stored)."""
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


async def _add(user_id: str, role: ApiRole, tenant: str | None):  # noqa: ANN202 - IssuedCredentials
    from fedstream.api.adapters import PostgresUserDirectory
    from fedstream.api.auth import issue_credentials, token_hash
    from fedstream.storage.postgres import apply_migrations, create_pool

    database_url = StackSettings().resolved().database_url
    await apply_migrations(database_url)
    credentials = issue_credentials(user_id)
    pool = await create_pool(database_url, max_size=1)
    try:
        await PostgresUserDirectory(pool).add(user_id, role, tenant, token_hash(credentials.token), credentials.totp_secret)
    finally:
        await pool.close()
    return credentials
