"""`fedstream privacy ledger`: remaining privacy budgets, read from the ledger's SQL view."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

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


ROUNDS_QUERY = (
    "SELECT l.round, count(*) AS charges, max(l.epsilon) AS max_epsilon, avg(l.noise_multiplier) AS sigma, "
    "c.noise_multiplier AS central_sigma, c.fraction_clipped, c.epsilon AS central_epsilon "
    "FROM privacy_ledger l LEFT JOIN privacy_central_ledger c ON c.federation_id = l.federation_id AND c.round = l.round "
    "WHERE l.federation_id = $1 GROUP BY l.round, c.noise_multiplier, c.fraction_clipped, c.epsilon ORDER BY l.round"
)
EPSILON_QUERY = (
    "SELECT participant_id, round, max(epsilon) AS epsilon FROM privacy_ledger "
    "WHERE federation_id = $1 AND epsilon IS NOT NULL GROUP BY participant_id, round ORDER BY participant_id, round"
)


@privacy_app.command("report")
def report(
    federation_id: str = typer.Option(..., "--federation"),
    png: Path = typer.Option(Path("privacy-epsilon.png"), help="where to write the plot of ε over rounds per participant"),
) -> None:
    """Per round: cumulative ε (the largest across participants), local σ, central σ and fraction clipped;
    and a PNG plot of each participant's cumulative ε over rounds."""
    from fedstream.report.load import epsilon_points
    from fedstream.report.plots import epsilon_png

    rounds, epsilon_rows = asyncio.run(_report_rows(federation_id))
    if not rounds:
        console.print(f"no privacy charges for {federation_id}")
        raise typer.Exit(1)
    console.print(rounds_table(rounds))
    points = epsilon_points(epsilon_rows)
    if points:
        png.write_bytes(epsilon_png(points))
        console.print(f"ε over rounds per participant: {png}")
    else:
        console.print("no ε charged (no DP mechanism at the participants): no plot")


async def _report_rows(federation_id: str) -> tuple[list[Mapping], list[Mapping]]:
    conn = await connect(StackSettings().resolved().database_url)
    try:
        return list(await conn.fetch(ROUNDS_QUERY, federation_id)), list(await conn.fetch(EPSILON_QUERY, federation_id))
    finally:
        await conn.close()


def rounds_table(rows: Sequence[Mapping]) -> Table:
    table = Table(title="privacy per round")
    for column in ("round", "charges", "max cumulative ε", "local σ", "central σ", "clipped", "central ε"):
        table.add_column(column, justify="right")

    def num(value: object, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for r in rows:
        table.add_row(
            str(r["round"]), str(r["charges"]), num(r["max_epsilon"], ".4f"), num(r["sigma"], ".3f"),
            num(r["central_sigma"], ".3f"), num(r["fraction_clipped"], ".0%"), num(r["central_epsilon"], ".4f"),
        )
    return table
