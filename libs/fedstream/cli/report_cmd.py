"""`fedstream report --html OUT.html`: the federation's report as one self-contained HTML file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from fedstream.report import NoFederation, load_report, render_report
from fedstream.settings import StackSettings
from fedstream.storage.postgres import connect

console = Console()


def report(
    html: Path = typer.Option(..., "--html", help="where to write the report (one file, plots inlined)", dir_okay=False),
    federation_id: str | None = typer.Option(None, "--federation", help="default: the most recent"),
) -> None:
    """Convergence, ε per participant, participant health and round latency, with plots."""
    try:
        page = asyncio.run(_render(federation_id))
    except NoFederation as e:
        console.print(f"[red]{e}[/]: `fedstream federation create SPEC` or `fedstream demo` first")
        raise typer.Exit(1) from e
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(page, encoding="utf-8")
    console.print(f"[green]report written[/] to {html} ({len(page.encode()) // 1024} KiB)")


async def _render(federation_id: str | None) -> str:
    conn = await connect(StackSettings().resolved().database_url)
    try:
        data = await load_report(conn, federation_id)
    finally:
        await conn.close()
    # Plotting is CPU work; the connection is closed first so it is not held open while matplotlib draws.
    return render_report(data)
