"""`fedstream privacy ledger`: remaining privacy budgets, read from the ledger's SQL view."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import typer
from rich.console import Console
from rich.table import Table

from fedstream.settings import StackSettings
from fedstream.storage.postgres import connect

console = Console()
privacy_app = typer.Typer(help="The privacy ledger: ε spent and remaining per participant and dataset.")

LEDGER_QUERY = (
    "SELECT * FROM privacy_budget_remaining WHERE ($1::text IS NULL OR federation_id = $1) "
    "ORDER BY federation_id, participant_id, dataset_id"
)
COLUMNS = ("federation", "participant", "dataset", "charges", "last round", "ε spent", "ε budget", "ε remaining", "δ", "bound", "status")


@privacy_app.command("ledger")
def ledger(federation_id: str | None = typer.Option(None, "--federation", help="default: every federation")) -> None:
    """ε spent and remaining per federation × participant × dataset (the view privacy_budget_remaining)."""
    rows = asyncio.run(_fetch(federation_id))
    if not rows:
        console.print("no DP charges in the ledger yet (plaintext federations claim no ε)")
        return
    console.print(ledger_table(rows))


async def _fetch(federation_id: str | None) -> list[Mapping]:
    conn = await connect(StackSettings().resolved().database_url)
    try:
        return list(await conn.fetch(LEDGER_QUERY, federation_id))
    finally:
        await conn.close()


def ledger_table(rows: Sequence[Mapping]) -> Table:
    """Rows of ``privacy_budget_remaining`` as a table (pure, so it is testable without a database)."""
    table = Table(title="privacy ledger")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("federation", "participant", "dataset", "bound", "status") else "right")
    for r in rows:
        table.add_row(
            r["federation_id"], r["participant_id"], r["dataset_id"], str(r["charges"]),
            "-" if r["last_round"] is None else str(r["last_round"]), f"{r['epsilon_spent']:.4f}", f"{r['budget_epsilon']:.4f}",
            f"{r['epsilon_remaining']:.4f}", f"{r['budget_delta']:.0e}", r["accountant"] or "-",
            "[red]exhausted[/]" if r["exhausted"] else "[green]within budget[/]",
        )
    return table
