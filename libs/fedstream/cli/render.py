"""Rich tables shared by the CLI commands."""

from __future__ import annotations

from rich.table import Table

from fedstream.participant.runtime import FederationProgress
from schemas import events as ev


def round_table(progress: FederationProgress, metric: str = "auc") -> Table:
    table = Table(title="Rounds", show_lines=False)
    for column in ("round", "outcome", "participants", metric, "accuracy", "loss", "round time"):
        table.add_column(column, justify="right" if column != "outcome" else "left")
    for number in sorted(progress.opened):
        opened = progress.opened[number]
        released = progress.released.get(number)
        outcome = progress.outcomes.get(number)
        if released is not None:
            m = released.metrics
            value = m.auc if metric == "auc" and m.auc is not None else m.accuracy
            seconds = (released.time - opened.time).total_seconds()
            table.add_row(
                str(number), f"released v{released.model_version}", str(len(released.contributions)),
                f"{value:.4f}", f"{m.accuracy:.4f}", f"{m.loss:.4f}", f"{seconds:.2f}s",
            )
        elif isinstance(outcome, ev.RoundFailed):
            table.add_row(str(number), f"failed ({outcome.received}/{outcome.quorum})", "-", "-", "-", "-", "-")
        elif isinstance(outcome, ev.RoundAggregated):
            later = any(n > number for n in progress.opened) or progress.completed is not None
            state = "not released (validation gate)" if later else "validating"
            table.add_row(str(number), state, str(len(outcome.contributions)), "-", "-", "-", "-")
        else:
            table.add_row(str(number), "collecting", "-", "-", "-", "-", "-")
    return table


def released_table(progress: FederationProgress) -> Table:
    table = Table(title="Released model versions")
    for column in ("version", "round", "sha256", "size", "contributors", "auc"):
        table.add_column(column, no_wrap=True)
    for number in sorted(progress.released):
        r = progress.released[number]
        auc = "n/a" if r.metrics.auc is None else f"{r.metrics.auc:.4f}"
        table.add_row(
            f"v{r.model_version}", str(r.round), r.model.sha256[:12], f"{r.model.size:,} B", str(len(r.contributions)), auc
        )
    return table
