"""Assemble the report: plots inlined as base64 PNG, every text escaped, no external reference at all —
the file is mailed to a DPO or archived with an audit, and must render the same offline."""

from __future__ import annotations

import base64
import html
import statistics
from collections.abc import Callable, Sequence

from fedstream.report import plots
from fedstream.report.model import ParticipantHealth, ReportData, RoundPoint
from fedstream.report.template import PAGE

NO_DP = "no DP mechanism in this federation: the privacy ledger charged no ε to any participant."


def render_report(data: ReportData) -> str:
    """The whole report as one HTML string."""
    return PAGE.substitute(
        federation_id=_e(data.federation_id),
        project_name=_e(data.project_name),
        state=_e(data.state),
        generated_at=_e(f"{data.generated_at:%Y-%m-%d %H:%M:%S %Z}".strip()),
        summary=_summary(data),
        convergence=_figure_or(
            lambda: plots.convergence_png(data.rounds, data.metric_name),
            any(r.metric is not None or r.loss is not None for r in data.rounds),
            f"{data.metric_name} and federated evaluation loss of each round's model",
            "no round has been evaluated yet.",
        ),
        privacy=_figure_or(
            lambda: plots.epsilon_png(data.epsilon), bool(data.epsilon),
            "cumulative ε each participant had spent once its update of the round counted (privacy ledger)",
            NO_DP,
        ),
        health=_figure_or(
            lambda: plots.health_png(data.health), bool(data.health),
            "updates each participant had accepted and rejected by the platform", "no participant yet.",
        ) + _health_table(data.health),
        latency=_figure_or(
            lambda: plots.latency_png(data.rounds), any(r.duration_s is not None for r in data.rounds),
            "seconds from a round's opening to its release, rejection or failure", "no round has finished yet.",
        ),
        rounds_table=_rounds_table(data.rounds, data.metric_name),
    )


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_or(draw: Callable[[], bytes], has_data: bool, caption: str, none: str) -> str:
    if not has_data:
        return f'<p class="none">{_e(none)}</p>'
    return f'<figure><img alt="{_e(caption)}" src="{png_data_uri(draw())}"><figcaption>{_e(caption)}</figcaption></figure>'


def _summary(data: ReportData) -> str:
    released = sum(r.status == "released" for r in data.rounds)
    durations = sorted(r.duration_s for r in data.rounds if r.duration_s is not None)
    metrics = [r.metric for r in data.rounds if r.metric is not None]
    tiles = {
        "rounds released": f"{released} / {len(data.rounds)}",
        f"latest {data.metric_name}": f"{metrics[-1]:.4f}" if metrics else "–",
        "participants": str(len(data.health)),
        "updates rejected": str(sum(h.rejected for h in data.health)),
        "round p50 / p99": (
            f"{_percentile(durations, 50):.1f} s / {_percentile(durations, 99):.1f} s" if durations else "–"
        ),
    }
    return "".join(f"<div><b>{_e(value)}</b>{_e(label)}</div>" for label, value in tiles.items())


def _percentile(sorted_values: Sequence[float], q: int) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    # "inclusive" keeps p99 within the observed range for a handful of rounds instead of extrapolating
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[q - 1]


def _health_table(health: Sequence[ParticipantHealth]) -> str:
    rows = [
        [h.participant_id, str(h.accepted), str(h.rejected),
         ", ".join(f"{reason} × {n}" for reason, n in h.rejection_reasons.items()) or "–"]
        for h in health
    ]
    return _table(["participant", "accepted", "rejected", "rejection reasons"], rows) if rows else ""


def _rounds_table(rounds: Sequence[RoundPoint], metric_name: str) -> str:
    if not rounds:
        return '<p class="none">no round yet.</p>'
    rows = [
        [str(r.round), r.status, _num(r.metric, ".4f"), _num(r.loss, ".4f"), _num(r.duration_s, ".2f", " s")]
        for r in rounds
    ]
    return _table(["round", "status", metric_name, "loss", "duration"], rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: float | None, spec: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{unit}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
