"""Per-site data sets for simulated participants: each site sees only its own train and holdout rows.

Two sources, both in memory and deterministic per seed:
- ``breast_cancer``: scikit-learn's Wisconsin breast cancer data (569 rows, 30 features, ships with
  scikit-learn), split across sites with label skew;
- ``synthetic``: a generated clinical cohort with covariate shift and different prevalence per site.

Labels are float32 in {0, 1}, 1 being the clinically positive class (malignant tumour, adverse outcome).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
from sklearn.datasets import load_breast_cancer

from fedstream.ml.partition import dirichlet_label_partition, skew_to_concentration, stratified_holdout

DatasetName = Literal["breast_cancer", "synthetic"]
DATASET_NAMES: tuple[str, ...] = get_args(DatasetName)

HOLDOUT_FRACTION = 0.25
# Ten rows of each class per site: at least 20 rows per site, and both classes on both sides of the
# holdout split. Caps breast_cancer at 21 sites (212 malignant rows).
MIN_ROWS_PER_CLASS = 10

SYNTHETIC_FEATURES = 20
SYNTHETIC_PATIENTS_PER_SITE = 2000
SYNTHETIC_SHIFT = 0.5
BREAST_CANCER_SKEW = 0.5


@dataclass(frozen=True)
class LocalDataset:
    """One site's data. Arrays are stored as read-only float32 copies, so a cached instance shared by
    several simulated participants in one process cannot be changed by any of them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    site: int
    name: str

    def __post_init__(self) -> None:
        for field in ("x_train", "y_train", "x_holdout", "y_holdout"):
            object.__setattr__(self, field, _read_only_float32(getattr(self, field)))
        _check_split(self.x_train, self.y_train, "train")
        _check_split(self.x_holdout, self.y_holdout, "holdout")
        if self.x_train.shape[1] != self.x_holdout.shape[1]:
            raise ValueError("train and holdout have different numbers of features")

    @property
    def num_train(self) -> int:
        return len(self.y_train)

    @property
    def num_holdout(self) -> int:
        return len(self.y_holdout)

    @property
    def num_features(self) -> int:
        return self.x_train.shape[1]


def _read_only_float32(values: np.ndarray) -> np.ndarray:
    array = np.array(values, dtype=np.float32, order="C", copy=True)
    array.flags.writeable = False
    return array


def _check_split(x: np.ndarray, y: np.ndarray, split: str) -> None:
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{split}: expected x of shape (n, d) and y of shape (n,), got {x.shape}, {y.shape}")
    if len(y) == 0:
        raise ValueError(f"{split}: no rows")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{split}: labels must be 0 or 1")


# --- splitting one site's rows ---------------------------------------------------------------------


def standardise(x_train: np.ndarray, x_holdout: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both splits with the mean and std of ``x_train`` only: the holdout must not leak into
    the statistics the model is trained under."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)  # a constant feature stays 0 rather than becoming NaN
    return (x_train - mean) / std, (x_holdout - mean) / std


def _site_dataset(
    x: np.ndarray, y: np.ndarray, site: int, name: str, rng: np.random.Generator, *, scale: bool
) -> LocalDataset:
    train, holdout = stratified_holdout(y, HOLDOUT_FRACTION, rng)
    x_train, x_holdout = x[train], x[holdout]
    if scale:
        x_train, x_holdout = standardise(x_train, x_holdout)
    return LocalDataset(x_train, y[train], x_holdout, y[holdout], site=site, name=name)


# --- breast cancer -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _breast_cancer_arrays() -> tuple[np.ndarray, np.ndarray]:
    bunch = load_breast_cancer()
    x = bunch.data.astype(np.float32)
    # scikit-learn codes malignant as 0; flip it so that 1 is the positive (malignant) class.
    y = (bunch.target == 0).astype(np.float32)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def breast_cancer_sites(n_sites: int, seed: int, skew: float = BREAST_CANCER_SKEW) -> list[LocalDataset]:
    """The breast cancer data split non-IID across ``n_sites`` (label-skewed Dirichlet partition,
    ``skew`` in [0, 1], see ``skew_to_concentration``), each site with a stratified 25% holdout.

    Every site gets ≥ 10 rows of each class (hence at most 21 sites). Features are standardised per
    site with that site's own train statistics: a hospital cannot see the others' data, so there is
    no cross-site leakage (a federated standardisation round would be a separate, explicit step).
    """
    x, y = _breast_cancer_arrays()
    rng = np.random.default_rng(seed)
    parts = dirichlet_label_partition(y, n_sites, skew_to_concentration(skew), MIN_ROWS_PER_CLASS, rng)
    return [
        _site_dataset(x[rows], y[rows], site, "breast_cancer", rng, scale=True)
        for site, rows in enumerate(parts)
    ]


# --- synthetic clinical cohort ------------------------------------------------------------------------

BASE_PREVALENCE = 0.25
LINEAR_SIGNAL = 2.0  # std of the linear part of the true logit for unit-variance features
INTERACTION = 0.6  # weight of x0*x1
CURVATURE = 0.4  # weight of x2**2 - 1


@dataclass(frozen=True)
class CohortTruth:
    """The shared ground-truth risk model every site's labels come from (up to a site intercept)."""

    weights: np.ndarray

    def logit(self, x: np.ndarray) -> np.ndarray:
        # The two non-linear terms are what a linear model cannot express and an MLP can.
        interaction = INTERACTION * x[:, 0] * x[:, 1]
        curvature = CURVATURE * (x[:, 2] ** 2 - 1.0)
        return x @ self.weights + interaction + curvature


def cohort_truth(n_features: int, rng: np.random.Generator) -> CohortTruth:
    if n_features < 3:
        raise ValueError(f"the synthetic cohort needs at least 3 features, got {n_features}")
    weights = rng.normal(0.0, 1.0, n_features)
    weights[rng.permutation(n_features)[: n_features // 4]] = 0.0  # some measurements carry no signal
    weights *= LINEAR_SIGNAL / np.linalg.norm(weights)
    return CohortTruth(weights=weights)


def _site_covariates(n_patients: int, n_features: int, shift: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-normal features moved by a per-site offset and stretched by a per-site scale: different
    hospitals measure different populations (and calibrate instruments differently)."""
    offset = rng.normal(0.0, shift, n_features)
    scale = np.exp(rng.normal(0.0, shift / 2.0, n_features))
    return offset + scale * rng.standard_normal((n_patients, n_features))


def intercept_for_prevalence(logits: np.ndarray, prevalence: float) -> float:
    """The shift b with mean(sigmoid(logits + b)) == prevalence, by bisection (the mean is monotone in b)."""
    low, high = -30.0, 30.0
    for _ in range(60):
        middle = (low + high) / 2.0
        if _sigmoid(logits + middle).mean() < prevalence:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _site_prevalence(shift: float, rng: np.random.Generator) -> float:
    # Spread around the base prevalence on the logit scale, so shift=0 gives identical sites.
    base_logit = np.log(BASE_PREVALENCE / (1.0 - BASE_PREVALENCE))
    return float(_sigmoid(base_logit + rng.normal(0.0, shift)))


def _synthetic_site(
    truth: CohortTruth, site: int, n_patients: int, shift: float, rng: np.random.Generator
) -> LocalDataset:
    n_features = len(truth.weights)
    x = _site_covariates(n_patients, n_features, shift, rng)
    risk = truth.logit(x)
    risk = risk + intercept_for_prevalence(risk, _site_prevalence(shift, rng))
    y = (rng.random(n_patients) < _sigmoid(risk)).astype(np.float32)
    # Not standardised: the features are already on a unit scale, and per-site scaling would erase
    # exactly the covariate shift this generator exists to create.
    return _site_dataset(x, y, site, "synthetic", rng, scale=False)


def synthetic_cohort_sites(
    n_sites: int = 15,
    patients_per_site: int = SYNTHETIC_PATIENTS_PER_SITE,
    n_features: int = SYNTHETIC_FEATURES,
    seed: int = 0,
    shift: float = SYNTHETIC_SHIFT,
) -> list[LocalDataset]:
    """A seeded synthetic clinical cohort: one true risk model, ``n_sites`` hospitals whose patients
    differ in covariates (offsets/scales ∝ ``shift``) and in prevalence, each with a 25% holdout.

    Each site draws from its own seed stream, so site k's data do not depend on ``n_sites``.
    """
    if n_sites < 1 or patients_per_site < 2 * MIN_ROWS_PER_CLASS or shift < 0:
        raise ValueError("need n_sites ≥ 1, patients_per_site ≥ 20 and shift ≥ 0")
    truth = cohort_truth(n_features, np.random.default_rng([seed, 0]))
    return [
        _synthetic_site(truth, site, patients_per_site, shift, np.random.default_rng([seed, 1 + site]))
        for site in range(n_sites)
    ]


# --- one participant's view ---------------------------------------------------------------------------


def load_site(dataset: DatasetName, site_index: int, n_sites: int, seed: int) -> LocalDataset:
    """Site ``site_index`` of ``n_sites``, with each source's default settings."""
    if not 0 <= site_index < n_sites:
        raise ValueError(f"site_index must lie in [0, {n_sites}), got {site_index}")
    return _all_sites(dataset, n_sites, seed)[site_index]


@functools.lru_cache(maxsize=8)
def _all_sites(dataset: DatasetName, n_sites: int, seed: int) -> tuple[LocalDataset, ...]:
    # Cached because a simulated federation runs every participant in one process: the partition is
    # computed once, and the read-only arrays are safe to share.
    if dataset == "breast_cancer":
        return tuple(breast_cancer_sites(n_sites, seed))
    if dataset == "synthetic":
        return tuple(synthetic_cohort_sites(n_sites, seed=seed))
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASET_NAMES}")


def dataset_input_dim(dataset: DatasetName) -> int:
    """Number of features a model needs for ``dataset`` (to check a federation spec's model)."""
    if dataset == "breast_cancer":
        return _breast_cancer_arrays()[0].shape[1]
    if dataset == "synthetic":
        return SYNTHETIC_FEATURES
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASET_NAMES}")
