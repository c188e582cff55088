"""Quality gates and convergence as pure functions over metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.events import EvaluationReported, ModelMetrics, ValidationGate
from schemas.federation import ValidationSpec


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    gate: ValidationGate | None = None
    detail: str = ""
    converged: bool = False
    target_reached: bool = False


def combine(evaluations: Sequence[EvaluationReported]) -> ModelMetrics:
    """Example-weighted mean of the participants' holdout metrics."""
    total = sum(e.num_examples for e in evaluations)
    if total == 0:
        return ModelMetrics(loss=0.0, accuracy=0.0, auc=None, num_examples=0, evaluators=0)
    with_auc = [e for e in evaluations if e.auc is not None]
    return ModelMetrics(
        loss=weighted_mean([(e.loss, e.num_examples) for e in evaluations]),
        accuracy=weighted_mean([(e.accuracy, e.num_examples) for e in evaluations]),
        auc=weighted_mean([(e.auc, e.num_examples) for e in with_auc]) if with_auc else None,  # type: ignore[misc]
        num_examples=total,
        evaluators=len(evaluations),
    )


def weighted_mean(pairs: Sequence[tuple[float, int]]) -> float:
    return sum(v * n for v, n in pairs) / sum(n for _, n in pairs)


def score(metrics: ModelMetrics, spec: ValidationSpec) -> float:
    """The gated metric; AUC falls back to accuracy when no holdout could define it."""
    if spec.metric == "auc" and metrics.auc is not None:
        return metrics.auc
    return metrics.accuracy


def judge(metrics: ModelMetrics, weights_finite: bool, accepted_history: Sequence[float], spec: ValidationSpec) -> Verdict:
    """Gates in order of severity; ``accepted_history`` holds the scores of earlier accepted models."""
    if not weights_finite:
        return Verdict(False, ValidationGate.NON_FINITE_WEIGHTS, "the aggregate contains NaN or infinite weights")
    if metrics.evaluators == 0:
        return Verdict(False, ValidationGate.NO_EVALUATIONS, "no participant evaluated the candidate in time")
    value = score(metrics, spec)
    if value < spec.min_metric:
        return Verdict(False, ValidationGate.BELOW_THRESHOLD, f"{spec.metric} {value:.4f} < minimum {spec.min_metric}")
    best = max(accepted_history, default=None)
    if best is not None and best - value > spec.max_regression:
        return Verdict(
            False, ValidationGate.REGRESSION, f"{spec.metric} {value:.4f} regressed more than {spec.max_regression} from {best:.4f}"
        )
    history = [*accepted_history, value]
    return Verdict(
        True,
        converged=has_converged(history, spec.convergence_threshold, spec.patience),
        target_reached=spec.target_metric is not None and value >= spec.target_metric,
    )


def has_converged(history: Sequence[float], threshold: float, patience: int) -> bool:
    """True when the best score improved by less than ``threshold`` over the last ``patience`` rounds."""
    if len(history) <= patience:
        return False
    best_before = max(history[:-patience])
    return max(history[-patience:]) - best_before < threshold
