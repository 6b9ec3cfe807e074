"""A small lending population whose true decision boundary moves by a known amount.

Used to test that recourse issued under version v survives version v+1 when it lies far from
v's boundary and fails when it lies close to it, and that robust recourse survives more often.

Population (one row per applicant, all from ``numpy.random.default_rng(seed)``):

- ``age`` = 18 + Gamma(2.5, 8), rounded, capped at 90 (int, immutable);
- ``income_k``: annual income in thousands, log-normal around 45 (sd 0.45 on the log scale),
  up 1 % a year of age from 30 to 50, clipped to [5, 400], one decimal (float);
- ``debt_ratio``: log-normal around 0.32 (sd 0.45), clipped to [0, 1.5], three decimals (float);
- ``savings_months``: months of expenses saved, Poisson with a log-normal rate around 2.5,
  capped at 24 (int).

True repayment log-odds of version ``v`` (``shift = 0``) and ``v+1`` (``shift > 0``)::

    z = 1.1 + 2.0 log(income_k / 45) - 5.0 (debt_ratio - 0.32)
            + 0.12 (savings_months - 2.5) + 0.01 (age - 35) - shift

``repaid = [u < sigmoid(z)]`` with ``u`` uniform, drawn once per row. The shift lowers the
intercept only, so the boundary ``z = 0`` moves parallel to itself, toward the approved side,
by ``shift`` log-odds units: under v+1 an applicant needs ``z_v >= shift`` where v asked
``z_v >= 0``. Recourse that lands just across v's boundary is therefore expected to fail
under v+1, and recourse that lands more than ``shift`` beyond it to survive. With the default
``shift = 1.0`` about 30 % of applicants have ``z_v < 0`` and 50 % have ``z_v < 1``.

Version v is trained on rows ``[0, n)``, version v+1 on rows ``[n, 2n)`` (new applicants, same
feature distribution, shifted labels), and ``applicants`` are ``n_applicants`` further rows,
the people who ask for recourse under v.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from governance.recourse.action_set import ActionElement, ActionSet
from governance.registry.schema import FeatureSchema, FeatureSpec

LABEL = "repaid"
FAVOURABLE = 1
SHIFT_SCHEMA = FeatureSchema(
    (
        FeatureSpec("income_k", "float", 5, 400, description="Annual income, thousands"),
        FeatureSpec("debt_ratio", "float", 0, 1.5, description="Debt payments / income"),
        FeatureSpec("savings_months", "int", 0, 24, description="Months of expenses saved"),
        FeatureSpec("age", "int", 18, 90, description="Age in years"),
    )
)


class ShiftScenario(NamedTuple):
    """Two training sets around a known boundary shift, and the people asking for recourse."""

    train_v1: pd.DataFrame
    train_v2: pd.DataFrame
    applicants: pd.DataFrame
    schema: FeatureSchema
    action_set: ActionSet
    shift: float


def true_logit(frame: pd.DataFrame, shift: float = 0.0) -> np.ndarray:
    """Repayment log-odds of the documented rule (see the module docstring).

    Parameters
    ----------
    frame : DataFrame
        Columns of ``SHIFT_SCHEMA``.
    shift : float, default=0.0
        0 for version v, the scenario's ``shift`` for version v+1.

    Returns
    -------
    z : ndarray of shape (n_rows,)
    """
    return (
        1.1
        + 2.0 * np.log(frame["income_k"].to_numpy(float) / 45.0)
        - 5.0 * (frame["debt_ratio"].to_numpy(float) - 0.32)
        + 0.12 * (frame["savings_months"].to_numpy(float) - 2.5)
        + 0.01 * (frame["age"].to_numpy(float) - 35.0)
        - float(shift)
    )


def shift_action_set() -> ActionSet:
    """What an applicant may change: raise income (up to +60k, steps of 1k), lower the debt
    ratio (steps of 0.01), save up to 12 more months; age is immutable."""
    return ActionSet(
        [
            ActionElement(
                "income_k", "float", lb=5, ub=400, step_direction=1, step_ub=60, step_size=1.0,
                note="a raise or a second job; at most +60k",
            ),
            ActionElement(
                "debt_ratio", "float", lb=0, ub=1.5, step_direction=-1, step_size=0.01,
                note="pay down debt",
            ),
            ActionElement(
                "savings_months", "int", lb=0, ub=24, step_direction=1, step_ub=12,
                note="save for up to a year",
            ),
            ActionElement("age", "int", lb=18, ub=90, actionable=False, note="immutable"),
        ],
        name="boundary-shift",
        version="1",
    )


def boundary_shift_scenario(
    n: int = 20_000, seed: int = 0, *, shift: float = 1.0, n_applicants: int = 2_000
) -> ShiftScenario:
    """Training sets of versions v and v+1 whose true boundary moves by ``shift``.

    Parameters
    ----------
    n : int, default=20_000
        Training rows per version.
    seed : int, default=0
        Seed of the whole scenario.
    shift : float, default=1.0
        Log-odds by which v+1's rule is stricter (>= 0; 0 gives two samples of one rule).
    n_applicants : int, default=2_000
        Rows of ``applicants`` (not trained on; labelled by v's rule).

    Returns
    -------
    ShiftScenario
        ``train_v1``, ``train_v2``, ``applicants`` (the schema's columns, ``repaid``,
        ``p_repay`` and ``z_v1``, the v log-odds), ``schema``, ``action_set``, ``shift``.

    Raises
    ------
    ValueError
        If ``n`` or ``n_applicants`` is not a positive integer, or ``shift`` is negative or
        not finite.

    Examples
    --------
    >>> s = boundary_shift_scenario(200, seed=1, n_applicants=10)
    >>> len(s.train_v1), len(s.train_v2), len(s.applicants)
    (200, 200, 10)
    >>> bool(s.train_v2["repaid"].mean() < s.train_v1["repaid"].mean())
    True
    """
    for name, value in (("n", n), ("n_applicants", n_applicants)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    if not np.isfinite(shift) or shift < 0:
        raise ValueError(f"shift must be a finite number >= 0; got {shift!r}")
    n, n_applicants = int(n), int(n_applicants)
    rng = np.random.default_rng(seed)
    frame = _population(rng, 2 * n + n_applicants)
    u = rng.random(len(frame))
    parts = []
    for lo, hi, s in ((0, n, 0.0), (n, 2 * n, shift), (2 * n, 2 * n + n_applicants, 0.0)):
        part = frame.iloc[lo:hi].reset_index(drop=True)
        z = true_logit(part, s)
        p = 1.0 / (1.0 + np.exp(-z))
        part[LABEL] = (u[lo:hi] < p).astype(np.int64)
        part["p_repay"] = p
        part["z_v1"] = true_logit(part, 0.0)
        parts.append(part)
    return ShiftScenario(parts[0], parts[1], parts[2], SHIFT_SCHEMA, shift_action_set(),
                         float(shift))


def _population(rng: np.random.Generator, m: int) -> pd.DataFrame:
    age = np.minimum(np.round(18 + rng.gamma(2.5, 8.0, m)), 90).astype(np.int64)
    growth = 1 + 0.01 * (np.clip(age, 30, 50) - 30)
    income = np.exp(rng.normal(np.log(45.0), 0.45, m)) * growth
    income = np.round(np.clip(income, 5, 400), 1)
    debt = np.round(np.clip(np.exp(rng.normal(np.log(0.32), 0.45, m)), 0, 1.5), 3)
    rate = 2.5 * np.exp(rng.normal(0, 0.5, m))
    savings = np.minimum(rng.poisson(rate), 24).astype(np.int64)
    return pd.DataFrame(
        {"income_k": income, "debt_ratio": debt, "savings_months": savings, "age": age}
    )
