"""The report's four plots as pure functions: plain data in, PNG bytes out.

Each builds its own ``Figure`` on the Agg canvas instead of going through pyplot, so there is no global
figure state, no GUI backend to pick, and two reports can render in parallel threads. Callers only pass
data that has something to draw (``page`` decides what to say when there is none).
"""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from fedstream.report.model import EpsilonPoint, ParticipantHealth, RoundPoint

_SIZE = (8, 4)  # inches; at 100 dpi a plot fits the report's 900 px column without rescaling
_DPI = 100
_STATUS_COLOURS = {"released": "#2a9d8f", "rejected": "#e76f51", "failed": "#d62828"}
_OTHER_COLOUR = "#8d99ae"  # rounds still in flight


def convergence_png(rounds: Sequence[RoundPoint], metric_name: str) -> bytes:
    """The validated metric (left axis) and the federated evaluation loss (right axis) per round."""
    fig, ax = _figure(f"convergence: {metric_name} and loss per round")
    metric = [(r.round, r.metric) for r in rounds if r.metric is not None]
    loss = [(r.round, r.loss) for r in rounds if r.loss is not None]
    _require(metric or loss, "rounds with a metric or a loss")
    if metric:
        ax.plot(*zip(*metric), marker="o", color="#1d3557", label=metric_name)
    ax.set_xlabel("round")
    ax.set_ylabel(metric_name)
    ax2 = ax.twinx()  # loss and AUC live on different scales; one axis would flatten one of them
    if loss:
        ax2.plot(*zip(*loss), marker="s", linestyle="--", color="#e63946", label="loss")
    ax2.set_ylabel("loss")
    _integer_rounds(ax)
    lines = ax.get_lines() + ax2.get_lines()
    # below the axes: inside, it would sit on one of the two curves whichever corner it took
    fig.legend(lines, [line.get_label() for line in lines], loc="outside lower center", ncols=2)
    return _png(fig)


def epsilon_png(points: Sequence[EpsilonPoint]) -> bytes:
    """Cumulative ε per participant over rounds, as the privacy ledger charged it."""
    _require(points, "ε charges")
    fig, ax = _figure("privacy: cumulative ε per participant")
    for participant in sorted({p.participant_id for p in points}):
        series = sorted((p.round, p.epsilon) for p in points if p.participant_id == participant)
        ax.plot(*zip(*series), marker="o", label=participant)
    ax.set_xlabel("round")
    ax.set_ylabel("ε (cumulative)")
    ax.set_ylim(bottom=0)
    _integer_rounds(ax)
    ax.legend(loc="upper left", fontsize="small", ncols=max(1, len(ax.get_lines()) // 8))
    return _png(fig)


def health_png(health: Sequence[ParticipantHealth]) -> bytes:
    """Accepted and rejected updates per participant, stacked."""
    _require(health, "participants")
    fig, ax = _figure("participant health: updates accepted vs rejected")
    names = [h.participant_id for h in health]
    accepted = [h.accepted for h in health]
    ax.bar(names, accepted, color="#2a9d8f", label="accepted")
    ax.bar(names, [h.rejected for h in health], bottom=accepted, color="#e76f51", label="rejected")
    ax.set_ylabel("updates")
    _headroom(ax, max(h.accepted + h.rejected for h in health))
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.tick_params(axis="x", labelrotation=45 if len(names) > 6 else 0)
    ax.legend(loc="upper right")
    return _png(fig)


def latency_png(rounds: Sequence[RoundPoint]) -> bytes:
    """Each finished round's duration (opened → released/rejected/failed), coloured by outcome, with the median."""
    done = [r for r in rounds if r.duration_s is not None]
    _require(done, "finished rounds")
    fig, ax = _figure("round latency: opened → outcome")
    ax.bar(
        [r.round for r in done], [r.duration_s for r in done],
        color=[_STATUS_COLOURS.get(r.status, _OTHER_COLOUR) for r in done],
    )
    median = statistics.median(r.duration_s for r in done)
    ax.axhline(median, color="#1d3557", linestyle=":", label=f"p50 {median:.2f} s")
    ax.set_xlabel("round")
    ax.set_ylabel("seconds")
    _headroom(ax, max(r.duration_s for r in done))
    _integer_rounds(ax)
    statuses = sorted({r.status for r in done})
    outcome = [Patch(color=_STATUS_COLOURS.get(s, _OTHER_COLOUR), label=s) for s in statuses]
    ax.legend(handles=[*outcome, *ax.get_lines()], loc="upper right", ncols=len(statuses) + 1)
    return _png(fig)


def _figure(title: str) -> tuple[Figure, object]:
    fig = Figure(figsize=_SIZE, dpi=_DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _headroom(ax, tallest: float) -> None:
    # Explicit limits: a zero-height stacked bar is a "sticky edge" that defeats margins, and the legend
    # sits in the top quarter, where no bar may reach.
    ax.set_ylim(0, max(tallest, 1) * 1.3)


def _integer_rounds(ax) -> None:  # round 1.5 does not exist
    ax.xaxis.get_major_locator().set_params(integer=True)


def _require(items: Sequence[object], what: str) -> None:
    if not items:
        raise ValueError(f"nothing to plot: no {what}")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No Software/date metadata: the same data gives the same bytes.
    FigureCanvasAgg(fig).print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()
