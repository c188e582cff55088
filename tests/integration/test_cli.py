"""The operator's commands against the live stack, after the end-to-end federation ran."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fedstream.cli.main import app

pytestmark = pytest.mark.integration


@pytest.fixture
def run(stack, monkeypatch):
    monkeypatch.setenv("FEDSTREAM_STATE_DIR", str(stack.settings.state_dir))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), catch_exceptions=False)


def test_status_shows_the_rounds_and_the_latest_model(run, federation):
    spec, result = federation
    out = run("status", "--federation", spec.federation_id)
    assert out.exit_code == 0, out.output
    assert spec.federation_id in out.output and "released" in out.output
    assert f"latest model: v{result.progress.completed.final_model_version}" in out.output


def test_audit_verify_confirms_an_intact_chain(run, federation):
    out = run("audit", "verify")
    assert out.exit_code == 0 and "audit trail intact" in out.output


def test_stack_status_lists_the_three_components(run):
    out = run("stack", "status")
    assert out.exit_code == 0
    assert all(name in out.output for name in ("kafka", "postgres", "redis"))
