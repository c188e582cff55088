"""`fedstream pia SPEC [--out pia.md]`: a privacy impact assessment generated from a federation spec."""

from __future__ import annotations

import html
from pathlib import Path

import typer
from rich.console import Console

from schemas.federation import SpecError, parse_spec

console = Console()


def pia(
    spec_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="the federation spec (YAML)"),
    out: Path | None = typer.Option(None, "--out", help="write here (.md Markdown, .html a standalone page); default: print"),
) -> None:
    """Purpose, participants and data, mechanisms with ε/δ and planned noise, retention, data flows, residual risks."""
    from services.compliance.pia import privacy_impact_assessment

    try:
        spec = parse_spec(spec_file.read_text())
    except SpecError as e:
        console.print(f"[red]{e}[/]")
        raise typer.Exit(1) from e
    document = privacy_impact_assessment(spec)
    if out is None:
        print(document, end="")  # plain Markdown on stdout, for pipes
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_html(document, spec.project_name) if out.suffix.lower() in (".html", ".htm") else document,
                   encoding="utf-8")
    console.print(f"[green]privacy impact assessment written[/] to {out}")


def to_html(markdown: str, title: str) -> str:
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)  # raw HTML in text stays text
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;line-height:1.45}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;vertical-align:top}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)} — PIA</title>"
            f"<style>{style}</style></head><body>{body}</body></html>\n")
