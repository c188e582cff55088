"""The HTML report's pure parts with hand-made data: rows → model, model → PNGs → one self-contained page."""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime, timezone
from decimal import Decimal

import numpy as np
import pytest
from PIL import Image

from fedstream.report import EpsilonPoint, ParticipantHealth, ReportData, RoundPoint, render_report
from fedstream.report import plots
from fedstream.report.page import NO_DP
from fedstream.report.load import participant_health, round_points

ROUNDS = (
    RoundPoint(1, "released", 0.81, 0.52, 4.0),
    RoundPoint(2, "released", 0.90, 0.37, 3.0),
    RoundPoint(3, "rejected", 0.86, 0.41, 5.0),
    RoundPoint(4, "open", None, None, None),
)
EPSILON = tuple(
    EpsilonPoint(p, r, eps * r) for p, eps in (("hospital-a", 0.1), ("hospital-b", 0.12)) for r in (1, 2, 3)
)
HEALTH = (
    ParticipantHealth("hospital-a", 3, 0),
    ParticipantHealth("hospital-b", 2, 1, {"stale_round": 1}),
    ParticipantHealth("mallory", 0, 2, {"not_enrolled": 2}),
)


def _data(**changes) -> ReportData:
    base = dict(
        federation_id="bc-<pilot>", project_name="Breast cancer & friends", state="completed (converged)",
        metric_name="auc", generated_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        rounds=ROUNDS, epsilon=EPSILON, health=HEALTH,
    )
    return ReportData(**{**base, **changes})


def _images(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b64))) for b64 in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def _not_blank(image: Image.Image) -> bool:
    pixels = np.asarray(image.convert("L"), dtype=float)
    return pixels.std() > 10 and (pixels < 128).mean() > 0.005  # some dark ink, not a flat canvas


# --- plots ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "draw",
    [
        lambda: plots.convergence_png(ROUNDS, "auc"),
        lambda: plots.epsilon_png(EPSILON),
        lambda: plots.health_png(HEALTH),
        lambda: plots.latency_png(ROUNDS),
    ],
    ids=["convergence", "epsilon", "health", "latency"],
)
def test_each_plot_is_a_png_with_something_drawn(draw) -> None:
    png = draw()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (800, 400)
    assert _not_blank(image)


def test_plots_are_deterministic() -> None:
    assert plots.convergence_png(ROUNDS, "auc") == plots.convergence_png(ROUNDS, "auc")


@pytest.mark.parametrize(
    "draw",
    [lambda: plots.convergence_png(ROUNDS[3:], "auc"), lambda: plots.epsilon_png(()),
     lambda: plots.health_png(()), lambda: plots.latency_png(ROUNDS[3:])],
)
def test_a_plot_with_nothing_to_draw_says_so(draw) -> None:
    with pytest.raises(ValueError, match="nothing to plot"):
        draw()


# --- the page ---------------------------------------------------------------------------------------


def test_the_page_inlines_four_plots_and_references_nothing_outside() -> None:
    page = render_report(_data())
    images = _images(page)
    assert len(images) == 4 and all(_not_blank(i) for i in images)
    # self-contained: no src/href that would need a network or a second file
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<script" not in page
    for section in ("convergence", "privacy", "health", "latency", "rounds"):
        assert f'<section id="{section}">' in page
    assert NO_DP not in page


def test_text_from_the_database_is_escaped() -> None:
    page = render_report(_data())
    assert "bc-&lt;pilot&gt;" in page and "bc-<pilot>" not in page
    assert "Breast cancer &amp; friends" in page


def test_without_epsilon_the_page_says_there_is_no_dp_mechanism() -> None:
    page = render_report(_data(epsilon=()))
    assert NO_DP in page
    assert len(_images(page)) == 3


def test_a_federation_without_rounds_still_renders() -> None:
    page = render_report(_data(rounds=(), epsilon=(), health=()))
    assert _images(page) == []
    assert "no round has been evaluated yet." in page and "no round has finished yet." in page


def test_summary_and_tables_carry_the_numbers() -> None:
    page = render_report(_data())
    assert "<b>2 / 4</b>rounds released" in page
    assert "<b>0.8600</b>latest auc" in page  # the latest evaluated round, rejected or not
    assert "<b>3</b>updates rejected" in page
    assert "<b>4.0 s / 5.0 s</b>round p50 / p99" in page
    assert "not_enrolled × 2" in page and "stale_round × 1" in page
    assert "<td>rejected</td><td>0.8600</td><td>0.4100</td><td>5.00 s</td>" in page


# --- rows → model -----------------------------------------------------------------------------------


def test_round_rows_pick_the_federation_metric_and_tolerate_missing_values() -> None:
    rows = [
        {"round": 1, "status": "released", "metrics": {"auc": 0.9, "accuracy": 0.8, "loss": 0.3}, "duration_s": Decimal("2.5")},
        {"round": 2, "status": "open", "metrics": None, "duration_s": None},
    ]
    assert round_points(rows, "accuracy") == (
        RoundPoint(1, "released", 0.8, 0.3, 2.5),
        RoundPoint(2, "open", None, None, None),
    )


def test_health_counts_every_enrolled_participant_and_unenrolled_senders() -> None:
    health = participant_health(
        ["a", "b", "c"],
        [{"participant_id": "a", "n": 3}, {"participant_id": "b", "n": 2}],
        [{"participant_id": "b", "reason": "replay", "n": 1}, {"participant_id": "b", "reason": "bad_signature", "n": 2},
         {"participant_id": "x", "reason": "not_enrolled", "n": 1}],
    )
    assert health == (
        ParticipantHealth("a", 3, 0, {}),
        ParticipantHealth("b", 2, 3, {"bad_signature": 2, "replay": 1}),
        ParticipantHealth("c", 0, 0, {}),
        ParticipantHealth("x", 0, 1, {"not_enrolled": 1}),
    )
