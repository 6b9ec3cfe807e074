"""Calibration of stability scores against the validity realised after a real redeploy.

At issue time each recourse gets a stability ``R`` (:mod:`governance.stability`); after the
next version is deployed we observe whether the recourse is still approved. Binning ``R`` and
reporting the realised validity rate per bin, with a Wilson score interval, shows whether a
high ``R`` really means the recourse survives, and what ``R >= tau`` is worth in practice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from governance.exceptions import RobustnessError

DEFAULT_BINS = (-1.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
COLUMNS = ("bin", "lo", "hi", "n", "mean_R", "n_valid", "validity", "ci_low", "ci_high")


def wilson_interval(
    successes: np.ndarray | int, n: np.ndarray | int, z: float = 1.96
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    successes, n : int or ndarray of int
        Successes and trials; NaN bounds where ``n == 0``.
    z : float, default=1.96
        Normal quantile (1.96 for 95 %).

    Returns
    -------
    (low, high) : tuple of ndarray

    Examples
    --------
    >>> lo, hi = wilson_interval(8, 10)
    >>> round(float(lo), 3), round(float(hi), 3)
    (0.49, 0.943)
    """
    s = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    empty = n == 0
    return np.where(empty, np.nan, centre - half), np.where(empty, np.nan, centre + half)


def calibration_table(
    R: np.ndarray,
    realised_valid: np.ndarray,
    bins: Sequence[float] = DEFAULT_BINS,
    *,
    z: float = 1.96,
) -> pd.DataFrame:
    """Realised validity per bin of stability ``R``.

    Bins are ``[lo, hi)`` except the last, ``[lo, hi]``, so ``R >= 0.75`` starts a bin with
    the default edges. Rows where ``R`` or ``realised_valid`` is NaN (no recourse issued, or not
    yet observed) are left out; values outside the edges raise.

    Parameters
    ----------
    R : ndarray of shape (n_rows,)
        Stability at issue time.
    realised_valid : ndarray of shape (n_rows,)
        1/True where the recourse point is approved by the redeployed model, 0/False where not,
        NaN where unknown.
    bins : sequence of float, default=DEFAULT_BINS
        Strictly increasing edges, at least two.
    z : float, default=1.96
        Normal quantile of the Wilson interval.

    Returns
    -------
    DataFrame
        One row per bin, empty bins included: ``bin`` (label such as ``"[0.75, 0.8)"``),
        ``lo``, ``hi``, ``n``, ``mean_R`` (NaN when empty), ``n_valid``, ``validity``
        (``n_valid / n``) and the Wilson interval ``ci_low``, ``ci_high``.

    Raises
    ------
    RobustnessError
        If the arrays differ in length, ``realised_valid`` holds values other than 0, 1 and
        NaN, the edges are not strictly increasing, or some ``R`` falls outside them.

    Examples
    --------
    >>> t = calibration_table(np.array([0.2, 0.8, 0.9]), np.array([0, 1, 1]), bins=(0, 0.5, 1))
    >>> t[["bin", "n", "validity"]].values.tolist()
    [['[0, 0.5)', 1, 0.0], ['[0.5, 1]', 2, 1.0]]
    """
    r = np.asarray(R, dtype=float).ravel()
    v = np.asarray(realised_valid, dtype=float).ravel()
    if r.shape != v.shape:
        raise RobustnessError(
            f"R and realised_valid must have the same length; got {r.size} and {v.size}"
        )
    edges = np.asarray(bins, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(
        np.diff(edges) <= 0
    ):
        raise RobustnessError(f"bins must be at least two strictly increasing edges; got {bins!r}")
    keep = np.isfinite(r) & ~np.isnan(v)
    r, v = r[keep], v[keep]
    if np.any((v != 0) & (v != 1)):
        raise RobustnessError(
            f"realised_valid must be 0, 1 or NaN; got {np.unique(v[(v != 0) & (v != 1)])}"
        )
    outside = (r < edges[0]) | (r > edges[-1])
    if outside.any():
        raise RobustnessError(
            f"R value {r[outside][0]:g} lies outside the bins [{edges[0]:g}, {edges[-1]:g}]"
        )
    which = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, edges.size - 2)
    nb = edges.size - 1
    n = np.bincount(which, minlength=nb)
    n_valid = np.bincount(which, weights=v, minlength=nb).astype(np.int64)
    sum_r = np.bincount(which, weights=r, minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_r = np.where(n > 0, sum_r / np.maximum(n, 1), np.nan)
        validity = np.where(n > 0, n_valid / np.maximum(n, 1), np.nan)
    low, high = wilson_interval(n_valid, n, z)
    labels = [
        f"[{a:g}, {b:g}{']' if i == nb - 1 else ')'}"
        for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True))
    ]
    return pd.DataFrame(
        {
            "bin": labels,
            "lo": edges[:-1],
            "hi": edges[1:],
            "n": n.astype(np.int64),
            "mean_R": mean_r,
            "n_valid": n_valid,
            "validity": validity,
            "ci_low": low,
            "ci_high": high,
        },
        columns=list(COLUMNS),
    )
