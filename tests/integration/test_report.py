"""`fedstream report --html` on the federation the session ran, rendered by a real browser (headless
Chromium): the page the operator mails around must show its plots, not just parse."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fedstream.cli.main import app
from fedstream.report.page import NO_DP
from schemas.topics import topics_consumed_by
from tests.integration.harness import wait_caught_up

pytestmark = pytest.mark.integration

WINDOW = (1280, 2000)
ACCEPTED_TEAL = (0x2A, 0x9D, 0x8F)  # the health plot's "accepted" bars (plots.health_png)


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        # Not a skip: CI installs it (.ci/run), so a missing browser is a broken machine, not an optional test.
        pytest.fail("headless Chromium is missing: `apt-get install -y chromium` (Debian's package; .ci/run installs it)")
    return path


def _screenshot(html: Path, png: Path, profile: Path) -> None:
    args = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        html.resolve().as_uri(),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"


async def _charged_epsilon(stack, federation_id: str) -> int:
    # The report reads the views; wait until the services that write them have consumed everything.
    for service in ("registry", "privacy-accounting"):
        await wait_caught_up(stack.endpoints, f"fedstream-{service}", topics_consumed_by(service))
    conn = await asyncpg.connect(stack.endpoints.database_url)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM privacy_ledger WHERE federation_id = $1 AND epsilon IS NOT NULL", federation_id
        )
    finally:
        await conn.close()


def test_report_renders_in_a_browser_with_its_plots(stack, federation, monkeypatch, tmp_path):
    spec, result = federation
    charged = asyncio.run(_charged_epsilon(stack, spec.federation_id))

    monkeypatch.setenv("FEDSTREAM_STATE_DIR", str(stack.settings.state_dir))
    html = tmp_path / "report.html"
    out = CliRunner().invoke(app, ["report", "--html", str(html), "--federation", spec.federation_id], catch_exceptions=False)
    assert out.exit_code == 0, out.output

    page = html.read_text()
    assert spec.federation_id in page and spec.project_name in page
    # every round of the run, released, in the rounds table
    released = re.findall(r"<tr><td>(\d+)</td><td>released</td>", page)
    assert sorted(map(int, released)) == sorted(result.progress.released) == list(range(1, spec.training.rounds + 1))
    # each participant's updates: one accepted per round, none rejected (the run rejected nothing)
    assert result.rejected == 0
    for p in spec.participants:
        assert f"<td>{p.participant_id}</td><td>{spec.training.rounds}</td><td>0</td>" in page
    images = re.findall(r'src="data:image/png;base64,', page)
    if charged:
        assert len(images) == 4 and NO_DP not in page
    else:
        assert len(images) == 3 and NO_DP in page
    assert not re.search(r'(src|href)="(?!data:)', page), "the report must not reference anything outside itself"

    png = tmp_path / "report.png"
    _screenshot(html, png, tmp_path / "chromium-profile")
    assert png.is_file() and png.stat().st_size > 0
    shot = np.asarray(Image.open(png).convert("RGB"), dtype=int)
    assert shot.shape[:2] == (WINDOW[1], WINDOW[0])
    grey = shot.mean(axis=2)
    assert grey.std() > 10 and (grey < 128).mean() > 0.005, "the screenshot is blank"
    # The inline PNGs were decoded and painted, not just the text around them.
    teal = (np.abs(shot - ACCEPTED_TEAL).max(axis=2) <= 8).sum()
    assert teal > 5_000, f"only {teal} pixels of the health plot's bars on screen"


def test_report_of_an_unknown_federation_fails_and_writes_nothing(stack, monkeypatch, tmp_path):
    monkeypatch.setenv("FEDSTREAM_STATE_DIR", str(stack.settings.state_dir))
    html = tmp_path / "report.html"
    out = CliRunner().invoke(app, ["report", "--html", str(html), "--federation", "no-such-federation"], catch_exceptions=False)
    assert out.exit_code == 1 and "no federation 'no-such-federation'" in out.output
    assert not html.exists()
