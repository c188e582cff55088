"""The `fedstream` command."""

from __future__ import annotations

import typer

from fedstream.cli import inspect_cmd, privacy_cmd, report_cmd, run_cmd, stack_cmd

app = typer.Typer(help="fedstream: privacy-preserving federated learning over Kafka.", no_args_is_help=True)
app.add_typer(stack_cmd.app, name="stack")
app.add_typer(inspect_cmd.audit_app, name="audit")
app.add_typer(inspect_cmd.views_app, name="views")
app.add_typer(privacy_cmd.privacy_app, name="privacy")
from fedstream.cli import api_cmd  # noqa: E402 - grouped with its registration for easy merging

app.add_typer(api_cmd.api_app, name="api")
from fedstream.cli import gdpr_cmd  # noqa: E402 - grouped with its registration for easy merging

app.add_typer(gdpr_cmd.gdpr_app, name="gdpr")
from fedstream.cli import pia_cmd  # noqa: E402 - grouped with its registration for easy merging

app.command("pia")(pia_cmd.pia)
from fedstream.cli import keys_cmd  # noqa: E402 - grouped with its registration for easy merging

app.add_typer(keys_cmd.keys_app, name="keys")
federation_app = typer.Typer(help="Federations.")
federation_app.command("create")(run_cmd.federation_create)
app.add_typer(federation_app, name="federation")
app.command("service")(run_cmd.service)
app.command("services")(run_cmd.services)
participant_app = typer.Typer(help="The participant runtime: train next to your data, publish protected updates.")
participant_app.command("run")(run_cmd.participant)
from fedstream.cli import identity_cmd  # noqa: E402 - grouped with its registration for easy merging

participant_app.command("keygen")(identity_cmd.keygen)
participant_app.command("enrol")(identity_cmd.enrol)
participant_app.command("revoke")(identity_cmd.revoke)
app.add_typer(identity_cmd.consent_app, name="consent")
app.add_typer(identity_cmd.baa_app, name="baa")
app.add_typer(participant_app, name="participant")
app.command("simulate")(run_cmd.simulate_cmd)
app.command("demo")(run_cmd.demo)
app.command("status")(inspect_cmd.status)
app.command("report")(report_cmd.report)

if __name__ == "__main__":
    app()
