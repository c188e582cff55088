"""``fedstream keys``: the key custodian's keys for homomorphic encryption (``crypto: he``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console()
keys_app = typer.Typer(help="Homomorphic-encryption keys, held by the key custodian (never by aggregation).")


@keys_app.command("init")
def init(
    spec_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="a federation spec with crypto: he"),
    public_out: Path | None = typer.Option(None, "--public-out", help="also write the public context here"),
) -> None:
    """Create the federation's HE context: the secret key sealed in the custodian's key store, the public
    context (no secret key) for participants and the aggregator. Existing keys are kept, never replaced."""
    from fedstream.cli.run_cmd import load_spec
    from services.key_custody.bootstrap import KeyCustodySettings
    from services.key_custody.handlers import create_keys

    spec = load_spec(spec_path)
    if not spec.encrypted:
        console.print(f"[red]{spec.federation_id} does not use crypto: he[/] (it uses {spec.crypto.value})")
        raise typer.Exit(2)
    settings = KeyCustodySettings.load()
    store = settings.key_store()
    existing = store.load(spec.federation_id)
    held = existing or store.create(spec.federation_id, create_keys(spec.he))
    verb = "kept the existing" if existing else "created"
    console.print(f"[green]{verb} keys for {spec.federation_id}[/] in {settings.key_directory()}")
    console.print(parameters_table(spec.he, held.fingerprint))
    if public_out is not None:
        public_out.write_bytes(held.public_context)
        console.print(f"public context (no secret key) written to {public_out}")


@keys_app.command("show")
def show(federation_id: str = typer.Argument(...)) -> None:
    """Whether the custodian holds keys for a federation, and their fingerprint (never the key)."""
    from services.key_custody.bootstrap import KeyCustodySettings

    held = KeyCustodySettings.load().key_store().load(federation_id)
    if held is None:
        console.print(f"[yellow]no keys for {federation_id}[/]")
        raise typer.Exit(1)
    console.print(f"{federation_id}: context fingerprint {held.fingerprint}")


def parameters_table(he_spec, fingerprint: str) -> Table:  # noqa: ANN001 - a schemas.he.HeSpec
    from schemas.he import MAX_COEFF_BITS_128, HeScheme

    table = Table(title="encryption parameters", show_header=False)
    table.add_row("scheme", he_spec.scheme.value)
    table.add_row("polynomial modulus degree", str(he_spec.poly_modulus_degree))
    table.add_row("coefficient moduli (bits)", f"{list(he_spec.moduli)} = {sum(he_spec.moduli)}")
    table.add_row("128-bit security allows", f"≤ {MAX_COEFF_BITS_128[he_spec.poly_modulus_degree]} bits (HE standard)")
    if he_spec.scheme is HeScheme.CKKS:
        table.add_row("scale", f"2^{he_spec.global_scale_bits}")
    else:
        table.add_row("plain modulus", f"{he_spec.plain_modulus_bits}-bit batching prime")
        table.add_row("quantisation", f"round(w · 2^{he_spec.quantisation_bits})")
    table.add_row("values per ciphertext", str(he_spec.slots))
    table.add_row("context fingerprint", fingerprint)
    return table
