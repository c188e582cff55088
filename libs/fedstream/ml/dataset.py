"""One site's data set and the per-site preparation every source shares: holdout split, scaling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedstream.ml.partition import stratified_holdout

HOLDOUT_FRACTION = 0.25
# Ten rows of each class per site: at least 20 rows per site, and both classes on both sides of the
# holdout split.
MIN_ROWS_PER_CLASS = 10


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
        raise ValueError(f"{split}: expected x (n, d) and y (n,), got {x.shape} and {y.shape}")
    if len(y) == 0:
        raise ValueError(f"{split}: no rows")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"{split}: labels must be 0 or 1")


# --- standardisation -----------------------------------------------------------------------------

Standardisation = Literal["federated", "site"]


@dataclass(frozen=True)
class FeatureScaler:
    mean: np.ndarray
    std: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std


def fit_scaler(train_splits: Sequence[np.ndarray]) -> FeatureScaler:
    """Mean and std over the union of ``train_splits``, from each split's sums (n, Σx, Σx²) only.

    Those sums are all a site has to contribute, so with several splits this is what a
    secure-aggregation round over the sites' local sums reveals: no row leaves its site, and holdout
    rows never enter the statistics. With one split it is plain local standardisation.
    """
    count = sum(len(x) for x in train_splits)
    total = sum(x.sum(axis=0, dtype=np.float64) for x in train_splits)
    squares = sum(np.square(x, dtype=np.float64).sum(axis=0) for x in train_splits)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    std = np.where(std > 1e-12, std, 1.0)  # a constant feature stays 0 rather than becoming NaN
    return FeatureScaler(mean=mean, std=std)


def split_site(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    train, holdout = stratified_holdout(y, HOLDOUT_FRACTION, rng)
    return x[train], y[train], x[holdout], y[holdout]
