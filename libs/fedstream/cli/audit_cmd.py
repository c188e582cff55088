"""`fedstream audit verify|checkpoints`: the hash chain and its signed Merkle checkpoints."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from fedstream.settings import StackSettings

console = Console()

TRUST_HELP = "key id of the compliance checkpoint key to trust (repeatable; default: the local compliance key)"


def verify(
    trust: list[str] = typer.Option([], "--trust", help=TRUST_HELP),
    published: bool = typer.Option(False, "--published", help="also check the checkpoints published on fedstream.audit"),
) -> None:
    """Walk the audit chain and check every signed checkpoint; name what is wrong (exit 1) or confirm it is intact."""
    from services.compliance.published import read_published_checkpoints
    from services.compliance.verify import verify_database

    endpoints = StackSettings().resolved()
    trusted = set(trust) or _local_key_ids()
    copies = asyncio.run(read_published_checkpoints(endpoints)) if published else None
    result = asyncio.run(verify_database(endpoints.database_url, trusted or None, copies))
    if result.intact:
        head = result.head[:16] if result.head else "-"
        console.print(f"[green]audit trail intact[/]: {result.rows} rows, head {head}…, "
                      f"{result.checkpoints} signed checkpoint(s) verified{_trust_note(trusted)}")
        return
    if result.broken is not None:
        console.print(f"[red]audit trail broken at seq {result.broken.seq}[/] ({result.broken.kind}): {result.broken.problem}")
    for p in result.checkpoint_problems:
        console.print(f"[red]checkpoint problem[/] ({p.kind}): {p.problem}")
    raise typer.Exit(1)


def checkpoints(
    trust: list[str] = typer.Option([], "--trust", help=TRUST_HELP),
    published: bool = typer.Option(False, "--published", help="list the published events instead of the stored rows"),
) -> None:
    """The signed checkpoints, each with whether its signature, key and link to the one before check out."""
    from services.compliance.adapters import read_checkpoints
    from services.compliance.checkpoints import check_checkpoints
    from services.compliance.published import read_published_checkpoints

    endpoints = StackSettings().resolved()
    trusted = set(trust) or _local_key_ids()
    if published:
        cps = asyncio.run(read_published_checkpoints(endpoints))
    else:
        cps = asyncio.run(_stored(endpoints.database_url, read_checkpoints))
    problems = {p.tree_size: p for p in check_checkpoints(cps, trusted or None)}
    table = Table(title=f"audit checkpoints ({'published on fedstream.audit' if published else 'stored'})")
    for column in ("rows", "root", "signed at", "key id", "check"):
        table.add_column(column)
    for cp in cps:
        found = problems.get(cp.tree_size)
        check = "[green]ok[/]" if found is None else f"[red]{found.kind}[/]"
        table.add_row(str(cp.tree_size), cp.root_hash[:16] + "…", f"{cp.signed_at:%Y-%m-%d %H:%M:%S}", cp.key_id, check)
    console.print(table)
    if problems:
        raise typer.Exit(1)


async def _stored(database_url: str, read):  # noqa: ANN001, ANN202 - read_checkpoints
    from fedstream.storage.postgres import connect

    conn = await connect(database_url)
    try:
        return await read(conn)
    finally:
        await conn.close()


def _local_key_ids() -> set[str]:
    """The key id of this machine's compliance checkpoint key, if there is one we may read."""
    from services.compliance.bootstrap import ComplianceSettings
    from services.compliance.checkpointer import SigningKeyError, load_signing_key
    from services.compliance.checkpoints import key_id_of, public_key_text

    path = ComplianceSettings.load().checkpoint_key_path()
    if not path.exists():
        return set()
    try:
        return {key_id_of(public_key_text(load_signing_key(path)))}
    except (OSError, SigningKeyError):
        return set()


def _trust_note(trusted: set[str]) -> str:
    if trusted:
        return f" (trusted key {', '.join(sorted(trusted))})"
    return " (signatures checked against the key each names; pin one with --trust KEY_ID)"
