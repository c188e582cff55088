import numpy as np
import pytest

from services.aggregation.fedavg import weighted_average


def _independent_fedavg(updates, counts):
    """Stack every tensor and take np.average with weights: a different code path from the one under test."""
    return {name: np.average(np.stack([u[name] for u in updates]), axis=0, weights=np.asarray(counts, float)) for name in updates[0]}


def test_weighted_average_equals_an_independent_numpy_computation():
    rng = np.random.default_rng(3)
    updates = [{"w": rng.normal(size=(4, 3)).astype(np.float32), "b": rng.normal(size=3).astype(np.float32)} for _ in range(5)]
    counts = [10, 250, 3, 77, 1000]
    got = weighted_average(updates, counts)
    expected = _independent_fedavg(updates, counts)
    for name in expected:
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-7)


def test_more_examples_pull_the_average_towards_that_update():
    a, b = {"w": np.zeros(2, np.float32)}, {"w": np.ones(2, np.float32)}
    assert weighted_average([a, b], [1, 3])["w"].tolist() == [0.75, 0.75]


ONE = {"w": np.zeros(1, np.float32)}


@pytest.mark.parametrize(
    ("updates", "counts"),
    [([], []), ([ONE, ONE], [1]), ([ONE, ONE], [0, 1]), ([ONE, ONE], [-1, 2])],
    ids=["no-updates", "count-missing", "zero-count", "negative-count"],
)
def test_invalid_example_counts_are_refused(updates, counts):
    with pytest.raises(ValueError):
        weighted_average(updates, counts)
