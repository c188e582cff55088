from uuid import uuid4

import pytest

from services.validation.domain import combine, has_converged, judge
from schemas.events import EvaluationReported, ModelMetrics, ValidationGate
from schemas.federation import ValidationSpec

SHA = "a" * 64


def report(pid, n, auc, acc=0.8, loss=0.5):
    return EvaluationReported(source="p", federation_id="f", participant_id=pid, round=1, candidate_sha256=SHA,
                              num_examples=n, loss=loss, accuracy=acc, auc=auc)


def metrics(auc, evaluators=2):
    return ModelMetrics(loss=0.4, accuracy=0.8, auc=auc, num_examples=100, evaluators=evaluators)


def test_combine_is_example_weighted():
    m = combine([report("a", 100, 0.9, acc=1.0), report("b", 300, 0.5, acc=0.0)])
    assert m.auc == pytest.approx(0.6)
    assert m.accuracy == pytest.approx(0.25)
    assert (m.num_examples, m.evaluators) == (400, 2)


def test_combine_skips_undefined_auc_but_keeps_accuracy():
    m = combine([report("a", 100, None, acc=1.0), report("b", 100, 0.7, acc=0.5)])
    assert m.auc == pytest.approx(0.7)
    assert m.accuracy == pytest.approx(0.75)


SPEC = ValidationSpec(metric="auc", min_metric=0.6, max_regression=0.05, convergence_threshold=0.01, patience=2)


def test_gates_in_order():
    assert judge(metrics(0.9), False, [], SPEC).gate is ValidationGate.NON_FINITE_WEIGHTS
    assert judge(metrics(0.9, evaluators=0), True, [], SPEC).gate is ValidationGate.NO_EVALUATIONS
    assert judge(metrics(0.55), True, [], SPEC).gate is ValidationGate.BELOW_THRESHOLD
    assert judge(metrics(0.80), True, [0.9], SPEC).gate is ValidationGate.REGRESSION
    assert judge(metrics(0.87), True, [0.9], SPEC).accepted


def test_convergence_after_patience_rounds_without_improvement():
    assert not has_converged([0.7, 0.8], 0.01, 2)
    assert not has_converged([0.7, 0.8, 0.85], 0.01, 2)
    assert has_converged([0.7, 0.8, 0.805, 0.806], 0.01, 2)
    assert judge(metrics(0.806), True, [0.7, 0.8, 0.805], SPEC).converged


def test_target_metric_reached():
    spec = SPEC.model_copy(update={"target_metric": 0.85})
    assert judge(metrics(0.86), True, [], spec).target_reached
    assert not judge(metrics(0.84), True, [], spec).target_reached
