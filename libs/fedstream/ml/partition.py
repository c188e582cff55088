"""Index maths for splitting a data set across sites and into train/holdout. Pure: RNG passed in."""

from __future__ import annotations

import numpy as np


def skew_to_concentration(skew: float) -> float:
    """Map ``skew`` in [0, 1] to a Dirichlet concentration α, log-linearly.

    0 → α=100 (sites see nearly the global label mix), 0.5 → α=1 (the usual non-IID benchmark
    setting), 1 → α=0.01 (each class lands almost entirely at one site, beyond the guaranteed floor).
    """
    if not 0.0 <= skew <= 1.0:
        raise ValueError(f"skew must lie in [0, 1], got {skew}")
    return float(10.0 ** (2.0 - 4.0 * skew))


def dirichlet_label_partition(
    labels: np.ndarray,
    n_sites: int,
    concentration: float,
    min_per_class: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Split row indices across sites with label skew (Hsu et al. 2019): for each class, draw the
    sites' shares from Dirichlet(α) and deal that class's rows out accordingly.

    Every site first receives ``min_per_class`` rows of every class, so each site can hold out both
    classes; only the rest follows the Dirichlet shares. Returns sorted, disjoint index arrays that
    together cover every row.
    """
    if n_sites < 1:
        raise ValueError(f"n_sites must be at least 1, got {n_sites}")
    per_site: list[list[np.ndarray]] = [[] for _ in range(n_sites)]
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        reserved = n_sites * min_per_class
        if len(rows) < reserved:
            raise ValueError(
                f"class {cls} has {len(rows)} rows, too few to give {n_sites} sites "
                f"{min_per_class} each; use fewer sites"
            )
        shares = rng.dirichlet(np.full(n_sites, concentration))
        counts = _apportion(shares, len(rows) - reserved)
        dealt = np.split(rows[reserved:], np.cumsum(counts)[:-1])
        for site in range(n_sites):
            per_site[site].append(rows[site * min_per_class : (site + 1) * min_per_class])
            per_site[site].append(dealt[site])
    return [np.sort(np.concatenate(chunks)) for chunks in per_site]


def _apportion(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total``, proportional to ``shares`` (largest remainder method)."""
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(np.int64)
    leftover = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    return counts


def stratified_holdout(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(train, holdout) row indices with ``fraction`` of each class held out.

    At least one row of each class goes to each side when the class has two or more rows, so a site
    with both classes can always compute a holdout AUC.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must lie in (0, 1), got {fraction}")
    train: list[np.ndarray] = []
    holdout: list[np.ndarray] = []
    for cls in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_holdout = min(max(1, round(fraction * len(rows))), len(rows) - 1) if len(rows) > 1 else 0
        holdout.append(rows[:n_holdout])
        train.append(rows[n_holdout:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(holdout))
