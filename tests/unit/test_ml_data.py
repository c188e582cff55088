"""Per-site data: non-IID partitions, holdouts, standardisation, the synthetic cohort, load_site."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from fedstream.ml.data import (
    LocalDataset,
    breast_cancer_sites,
    dataset_input_dim,
    load_site,
    synthetic_cohort_sites,
)
from fedstream.ml.dataset import fit_scaler
from fedstream.ml.partition import dirichlet_label_partition, skew_to_concentration, stratified_holdout


def _positive_share(site: LocalDataset) -> float:
    labels = np.concatenate([site.y_train, site.y_holdout])
    return float(labels.mean())


def _share_spread(sites: list[LocalDataset]) -> float:
    return float(np.ptp([_positive_share(s) for s in sites]))


def _all_rows(sites: list[LocalDataset]) -> np.ndarray:
    return np.concatenate([np.concatenate([s.x_train, s.x_holdout]) for s in sites])


# --- partition maths ------------------------------------------------------------------------------


def test_dirichlet_partition_is_disjoint_covers_every_row_and_keeps_the_floor() -> None:
    labels = (load_breast_cancer().target == 0).astype(np.float32)
    rng = np.random.default_rng(3)
    parts = dirichlet_label_partition(labels, 7, concentration=0.3, min_per_class=10, rng=rng)
    joined = np.concatenate(parts)
    assert len(joined) == len(labels)
    assert np.array_equal(np.sort(joined), np.arange(len(labels)))
    for rows in parts:
        assert (labels[rows] == 1).sum() >= 10 and (labels[rows] == 0).sum() >= 10


def test_dirichlet_partition_refuses_more_sites_than_the_floor_allows() -> None:
    labels = np.array([0.0] * 50 + [1.0] * 15)
    with pytest.raises(ValueError, match="fewer sites"):
        dirichlet_label_partition(labels, 2, 1.0, min_per_class=10, rng=np.random.default_rng(0))


def test_skew_maps_monotonically_to_concentration() -> None:
    assert skew_to_concentration(0.0) > skew_to_concentration(0.5) == 1.0 > skew_to_concentration(1.0)
    with pytest.raises(ValueError):
        skew_to_concentration(1.5)


def test_stratified_holdout_keeps_both_classes_on_both_sides() -> None:
    labels = np.array([1.0] * 3 + [0.0] * 37)
    train, holdout = stratified_holdout(labels, 0.25, np.random.default_rng(0))
    assert set(labels[train]) == set(labels[holdout]) == {0.0, 1.0}
    assert len(np.intersect1d(train, holdout)) == 0 and len(train) + len(holdout) == 40
    assert len(holdout) == 10


# --- breast cancer sites ---------------------------------------------------------------------------


def test_breast_cancer_sites_cover_the_data_set_without_overlap() -> None:
    sites = breast_cancer_sites(n_sites=5, seed=0)
    rows = _all_rows(sites)
    assert len(rows) == 569
    # One shared scaler maps distinct rows to distinct rows: a row dealt to two sites would repeat.
    assert len(np.unique(rows.round(5), axis=0)) == 569
    assert sum(s.y_train.sum() + s.y_holdout.sum() for s in sites) == 212  # every malignant case once


def test_breast_cancer_sites_are_label_skewed() -> None:
    shares = [_positive_share(s) for s in breast_cancer_sites(n_sites=5, seed=0, skew=0.5)]
    assert max(shares) - min(shares) > 0.2
    # More skew, more spread between the sites' label mixes.
    spread = {
        skew: np.mean([_share_spread(breast_cancer_sites(5, seed, skew)) for seed in range(5)])
        for skew in (0.0, 1.0)
    }
    assert spread[1.0] > spread[0.0] + 0.2


def test_every_breast_cancer_site_has_both_classes_a_quarter_held_out_and_enough_rows() -> None:
    for site in breast_cancer_sites(n_sites=15, seed=1, skew=1.0):
        assert site.num_train + site.num_holdout >= 20
        assert set(site.y_train) == set(site.y_holdout) == {0.0, 1.0}
        assert site.num_holdout == pytest.approx(0.25 * (site.num_train + site.num_holdout), abs=2)
        assert site.num_features == 30


def test_breast_cancer_refuses_more_sites_than_the_data_allow() -> None:
    with pytest.raises(ValueError):
        breast_cancer_sites(n_sites=22, seed=0)


def test_breast_cancer_sites_are_deterministic_per_seed() -> None:
    first, again, other = breast_cancer_sites(4, 3), breast_cancer_sites(4, 3), breast_cancer_sites(4, 4)
    assert all(np.array_equal(a.x_train, b.x_train) for a, b in zip(first, again))
    assert [s.num_train for s in first] != [s.num_train for s in other]


def test_federated_standardisation_uses_pooled_train_statistics_only() -> None:
    sites = breast_cancer_sites(5, seed=0, standardisation="federated")
    pooled_train = np.concatenate([s.x_train for s in sites])
    np.testing.assert_allclose(pooled_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(pooled_train.std(axis=0), 1.0, atol=1e-3)
    # The holdouts were not part of the statistics, so they are not exactly centred.
    assert np.abs(np.concatenate([s.x_holdout for s in sites]).mean(axis=0)).max() > 1e-3


def test_site_standardisation_centres_each_site_on_its_own_train_split() -> None:
    for site in breast_cancer_sites(5, seed=0, standardisation="site"):
        np.testing.assert_allclose(site.x_train.mean(axis=0), 0.0, atol=1e-4)


def test_fit_scaler_from_sums_equals_the_pooled_mean_and_std() -> None:
    rng = np.random.default_rng(0)
    splits = [rng.normal(3.0, 2.0, (n, 4)) for n in (5, 50, 17)]
    scaler = fit_scaler(splits)
    pooled = np.concatenate(splits)
    np.testing.assert_allclose(scaler.mean, pooled.mean(axis=0))
    np.testing.assert_allclose(scaler.std, pooled.std(axis=0))


# --- synthetic cohort ------------------------------------------------------------------------------


def test_synthetic_cohort_is_deterministic_per_seed() -> None:
    first, again = synthetic_cohort_sites(seed=5), synthetic_cohort_sites(seed=5)
    other = synthetic_cohort_sites(seed=6)
    for a, b, c in zip(first, again, other):
        assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_holdout, b.y_holdout)
        assert not np.array_equal(a.x_train, c.x_train)


def test_synthetic_cohort_shape_and_split() -> None:
    sites = synthetic_cohort_sites(n_sites=15, patients_per_site=2000, n_features=20, seed=0)
    assert len(sites) == 15 and [s.site for s in sites] == list(range(15))
    for site in sites:
        assert site.num_train + site.num_holdout == 2000 and site.num_holdout == 500
        assert site.num_features == 20 and site.name == "synthetic"
        assert set(site.y_train) == {0.0, 1.0}


def test_synthetic_sites_are_shifted_in_covariates_and_prevalence() -> None:
    shifted = synthetic_cohort_sites(n_sites=10, seed=0, shift=0.5)
    identical = synthetic_cohort_sites(n_sites=10, seed=0, shift=0.0)
    mean_spread = {
        shift: np.std([s.x_train.mean(axis=0) for s in sites], axis=0).mean()
        for shift, sites in ((0.5, shifted), (0.0, identical))
    }
    prevalence_spread = {0.5: _share_spread(shifted), 0.0: _share_spread(identical)}
    assert mean_spread[0.5] > 0.3 > 0.1 > mean_spread[0.0]
    assert prevalence_spread[0.5] > 0.15 > prevalence_spread[0.0]


def test_a_synthetic_site_does_not_depend_on_the_number_of_sites() -> None:
    three, six = synthetic_cohort_sites(n_sites=3), synthetic_cohort_sites(n_sites=6)
    assert np.array_equal(three[2].x_train, six[2].x_train)


def test_synthetic_cohort_generates_fifteen_hospitals_quickly() -> None:
    start = time.perf_counter()
    synthetic_cohort_sites(n_sites=15, patients_per_site=2000, seed=123)
    assert time.perf_counter() - start < 1.0  # measured ~0.07 s; a regression to per-row loops fails


# --- LocalDataset and load_site --------------------------------------------------------------------


def test_local_dataset_is_read_only_and_copies_its_input() -> None:
    x = np.zeros((4, 2))
    site = LocalDataset(x, np.array([0, 1, 0, 1]), x[:2], np.array([0, 1]), site=0, name="t")
    x[:] = 5.0
    assert site.x_train.max() == 0.0 and site.x_train.dtype == np.float32 and site.y_train.dtype == np.float32
    with pytest.raises(ValueError):
        site.x_train[0, 0] = 1.0


@pytest.mark.parametrize(
    "labels, holdout_x",
    [
        (np.array([0, 2, 0, 1]), np.zeros((2, 2))),
        (np.array([0, 1, 0]), np.zeros((2, 2))),
        (np.array([0, 1, 0, 1]), np.zeros((2, 3))),
    ],
    ids=["label-not-binary", "length-mismatch", "feature-mismatch"],
)
def test_local_dataset_rejects_inconsistent_arrays(labels: np.ndarray, holdout_x: np.ndarray) -> None:
    with pytest.raises(ValueError):
        LocalDataset(np.zeros((4, 2)), labels, holdout_x, np.array([0, 1]), site=0, name="t")


def test_load_site_picks_one_site_and_caches_the_partition() -> None:
    site = load_site("synthetic", site_index=4, n_sites=15, seed=0)
    assert site is load_site("synthetic", site_index=4, n_sites=15, seed=0)
    assert np.array_equal(site.x_train, synthetic_cohort_sites(15, seed=0)[4].x_train)
    cancer = load_site("breast_cancer", site_index=2, n_sites=5, seed=0)
    assert np.array_equal(cancer.x_holdout, breast_cancer_sites(5, 0)[2].x_holdout)


def test_load_site_sizes_the_synthetic_cohort() -> None:
    small = load_site("synthetic", 0, 3, 0, patients_per_site=400)
    assert small.num_train + small.num_holdout == 400
    cancer = load_site("breast_cancer", 0, 3, 0, patients_per_site=400)  # fixed size: ignored
    assert cancer is load_site("breast_cancer", 0, 3, 0)


def test_load_site_rejects_unknown_dataset_and_out_of_range_site() -> None:
    with pytest.raises(ValueError):
        load_site("mnist", 0, 3, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        load_site("synthetic", 3, 3, 0)


@pytest.mark.parametrize("dataset", ["breast_cancer", "synthetic"])
def test_dataset_input_dim_matches_the_data(dataset: str) -> None:
    assert dataset_input_dim(dataset) == load_site(dataset, 0, 3, 0).num_features  # type: ignore[arg-type]
