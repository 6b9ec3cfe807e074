"""Robust recourse: the cheapest feasible flipping action whose stability clears a bar.

Among the candidate actions of the minimal-cost search (:func:`governance.recourse.
find_recourse`), robust recourse issues the cheapest one that flips the decision **and** has
stability ``R(x') >= tau`` (:mod:`governance.stability`; Hamman et al. use ``tau = 0.75``,
``sigma = 0.05``, ``k = 1000``). Only model scores are needed, so it works for tree ensembles as
well as for differentiable models. This is the "nearest neighbour" flavour of T-Rex, taken over
the action set's candidates in cost order instead of over training points by distance.

How it stays cheap. ``R(x') <= m(x')``, so a candidate scoring below ``tau`` is rejected for
free. The search runs in passes:

0. the minimal-cost recourse is scored; where its ``R >= tau`` it is also the robust one;
1. up to ``LAZY_PASSES`` times, the search issues the cheapest flip with ``m >= tau`` that is
   not already known to fail, and that point is scored for stability; a person is settled
   when it passes (every cheaper candidate failed: it flips not, scores below ``tau``, or was
   scored and failed). When it fails, the candidates the search met right after it (likely
   that person's next ones; 4 in the first pass, twice as many each pass) are scored too, so
   the next pass skips them if they fail;
2. people still open are searched once more with every candidate of ``m >= tau`` scored as it
   is met (:func:`governance.stability.stability_at_least`, exact early rejection).

Passes share a cache of model scores and one of stability results, both by point, so a pass
pays only for candidates it meets for the first time. Each pass is exact, so the issued action
is the cheapest accepted candidate of the search, as for minimal-cost recourse (``complete``
says whether it is proven minimal on the candidate grid, ``minimal_over`` whether that holds
over the whole action set). Statuses follow :class:`~governance.recourse.
RecourseResult`; ``"unaccepted"`` means flips exist but none was found with ``R >= tau``.

Cost. Robust points lie deeper in the cost order than minimal ones, and every cheaper
candidate must be scored, plus ``k`` samples for each stability check: on the demo model
(150 trees, 20 features) expect seconds per person, not milliseconds (``bench/stability.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from governance.exceptions import RobustnessError
from governance.recourse.action_set import ActionSet
from governance.recourse.costs import Cost
from governance.recourse.search import MAX_POINTS, RecourseResult, find_recourse
from governance.registry.model import DecisionModel
from governance.retraining.stability_score import (
    BATCH_ROWS,
    DEFAULT_K,
    DEFAULT_SIGMA,
    stability,
    stability_at_least,
)
from governance.retraining.variants import forward_validity

DEFAULT_TAU = 0.75
LAZY_PASSES = 12
_LOOKAHEAD = 4  # candidates scored ahead of a failed one in the first pass; doubles per pass


@dataclass(frozen=True)
class RobustRecourseResult:
    """Robust and minimal-cost recourse for the same people, side by side.

    Attributes
    ----------
    base : RecourseResult
        The robust search: the issued action is the cheapest found with ``R >= tau``.
        ``n_points`` counts candidate points of all passes, stability samples excluded.
    minimal : RecourseResult
        The minimal-cost recourse of the same rows (flip only).
    stability : ndarray of shape (n_rows,)
        ``R`` of the robust recourse point; NaN where none was issued.
    minimal_stability : ndarray of shape (n_rows,)
        ``R`` of the minimal-cost recourse point; NaN where none was issued.
    cost_increase : ndarray of shape (n_rows,)
        Robust cost minus minimal cost; NaN unless both were issued.
    tau, k, sigma, seed
        The stability bar and the parameters of ``R`` (store them with the scores).
    """

    base: RecourseResult
    minimal: RecourseResult
    stability: np.ndarray
    minimal_stability: np.ndarray
    cost_increase: np.ndarray
    tau: float
    k: int
    sigma: float
    seed: int

    @property
    def issued(self) -> np.ndarray:
        """True where a robust recourse was issued."""
        return self.base.status == "recourse"

    def to_frame(self) -> pd.DataFrame:
        """One row per person: the robust recourse (columns of ``base.to_frame()``) plus
        ``stability``, ``minimal_status``, ``minimal_cost``, ``minimal_stability``,
        ``cost_increase``, ``tau``, ``k``, ``sigma`` and ``stability_seed``."""
        df = self.base.to_frame()
        df["stability"] = self.stability
        df["minimal_status"] = self.minimal.status
        df["minimal_cost"] = self.minimal.cost
        df["minimal_stability"] = self.minimal_stability
        df["cost_increase"] = self.cost_increase
        df["tau"] = self.tau
        df["k"] = self.k
        df["sigma"] = self.sigma
        df["stability_seed"] = self.seed
        return df

    def summary(self) -> dict[str, float]:
        """Counts and means over the people with both recourses issued (the pairs).

        Keys: ``denied``, ``minimal_issued``, ``robust_issued``, ``pairs``,
        ``minimal_already_robust`` (share of pairs whose minimal recourse has ``R >= tau``),
        ``mean_minimal_cost``, ``mean_robust_cost``, ``mean_cost_increase``,
        ``mean_minimal_stability``, ``mean_robust_stability``.
        """
        pairs = self.issued & (self.minimal.status == "recourse")
        both = np.flatnonzero(pairs)

        def mean(a: np.ndarray) -> float:
            return float(np.mean(a[both])) if both.size else float("nan")

        return {
            "denied": int(np.sum(self.minimal.status != "approved")),
            "minimal_issued": int(np.sum(self.minimal.status == "recourse")),
            "robust_issued": int(np.sum(self.issued)),
            "pairs": int(both.size),
            "minimal_already_robust": mean(self.minimal_stability >= self.tau),
            "mean_minimal_cost": mean(self.minimal.cost),
            "mean_robust_cost": mean(self.base.cost),
            "mean_cost_increase": mean(self.cost_increase),
            "mean_minimal_stability": mean(self.minimal_stability),
            "mean_robust_stability": mean(self.stability),
        }


def robust_recourse(
    model: DecisionModel,
    action_set: ActionSet,
    X: np.ndarray | pd.DataFrame,
    cost: Cost,
    scale: np.ndarray,
    *,
    tau: float = DEFAULT_TAU,
    k: int = DEFAULT_K,
    sigma: float = DEFAULT_SIGMA,
    seed: int = 0,
    max_points: int = MAX_POINTS,
    batch_rows: int = BATCH_ROWS,
    minimal: RecourseResult | None = None,
) -> RobustRecourseResult:
    """Cheapest feasible flipping action with stability ``R >= tau``, per denied row.

    Parameters
    ----------
    model : DecisionModel
        The issuing model.
    action_set : ActionSet
        Feasible actions, matched to ``model.schema`` by name.
    X : ndarray of shape (n_rows, n_features) or DataFrame
        Rows in schema order, categories as integer codes.
    cost : Cost
        Fitted on the model's features.
    scale : ndarray of shape (n_features,)
        Noise spread per feature (:func:`governance.stability.feature_scale`).
    tau : float, default=0.75
        Stability bar, in ``(0, 1]``.
    k, sigma, seed : int, float, int
        Parameters of ``R`` (:func:`governance.stability.stability`).
    max_points : int, default=recourse.MAX_POINTS
        Exact-search budget per person and search pass (as in ``find_recourse``).
    batch_rows : int, default=500_000
        Rows per model call.
    minimal : RecourseResult, optional
        The minimal-cost recourse of the same rows, if already computed (it is computed
        otherwise).

    Returns
    -------
    RobustRecourseResult
        Every issued robust action flips the model, lies in the action set and has
        ``R >= tau``; its cost is at least the minimal cost.

    Raises
    ------
    RobustnessError
        If ``tau`` is outside ``(0, 1]``, ``minimal`` does not match ``X``, or the stability
        parameters are invalid.
    ActionSetError, CostError
        As :func:`governance.recourse.find_recourse`.

    Examples
    --------
    >>> from governance.schema import FeatureSchema, FeatureSpec
    >>> from governance.action_set import ActionElement
    >>> from governance.costs import MADL1Cost
    >>> class Ramp:  # P(approve) rises with x
    ...     classes_ = np.array([0, 1])
    ...     def predict_proba(self, frame):
    ...         p = np.clip(frame.to_numpy(dtype=float)[:, 0] / 10, 0, 1)
    ...         return np.column_stack([1 - p, p])
    >>> model = DecisionModel(Ramp(), FeatureSchema((FeatureSpec("x", "int", 0, 10),)))
    >>> A = ActionSet([ActionElement("x", "int", lb=0, ub=10)])
    >>> r = robust_recourse(model, A, np.array([[2.0]]), MADL1Cost(["x"], {"x": 1.0}),
    ...                     np.array([0.0]), tau=0.75)
    >>> r.minimal.x_after.tolist(), r.base.x_after.tolist(), r.cost_increase.tolist()
    ([[5.0]], [[8.0]], [3.0])
    """
    if not (np.isfinite(tau) and 0 < tau <= 1):
        raise RobustnessError(f"tau must be in (0, 1]; got {tau!r}")
    M = model.matrix(X) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)
    if minimal is None:
        minimal = find_recourse(
            model, action_set, M, cost, max_points=max_points, batch_rows=batch_rows
        )
    elif len(minimal.status) != len(M) or tuple(minimal.feature_names) != tuple(
        model.schema.names
    ):
        raise RobustnessError(
            f"minimal recourse must cover the {len(M)} rows of X in schema order; got "
            f"{len(minimal.status)} rows of {list(minimal.feature_names)}"
        )
    bar = _Bar(model, scale, float(tau), k, sigma, seed, batch_rows)
    issued_min = np.flatnonzero(minimal.status == "recourse")
    R_min = np.full(len(M), np.nan)
    R_min[issued_min] = stability(
        model, minimal.x_after[issued_min], scale, k=k, sigma=sigma, seed=seed,
        batch_rows=batch_rows,
    )
    bar.remember(minimal.x_after[issued_min], R_min[issued_min])

    out = _Columns.of(minimal)
    todo = issued_min[R_min[issued_min] < tau]
    searcher = _ScoreCache.wrap(model)  # passes revisit the same candidates
    for p in range(LAZY_PASSES):
        if todo.size == 0:
            break
        bar.seen = []
        res = find_recourse(
            searcher, action_set, M[todo], cost, max_points=max_points, batch_rows=batch_rows,
            accept=bar.lazy,
        )
        out.put(todo, res, add_points=True)
        got = np.flatnonzero(res.status == "recourse")
        bar.evaluate(res.x_after[got])
        failed = ~bar.passes(res.x_after[got])
        bar.look_ahead(res.x_after[got[failed]], _LOOKAHEAD * 2**p)
        todo = todo[got[failed]]
    if todo.size:
        res = find_recourse(
            searcher, action_set, M[todo], cost, max_points=max_points, batch_rows=batch_rows,
            accept=bar.full,
        )
        out.put(todo, res, add_points=True)

    base = out.result(minimal)
    issued = np.flatnonzero(base.status == "recourse")
    R = np.full(len(M), np.nan)
    R[issued] = bar.lookup(base.x_after[issued])
    cost_increase = base.cost - minimal.cost  # NaN unless both issued
    return RobustRecourseResult(
        base=base,
        minimal=minimal,
        stability=R,
        minimal_stability=R_min,
        cost_increase=cost_increase,
        tau=float(tau),
        k=int(k),
        sigma=float(sigma),
        seed=int(seed),
    )


def validity_tradeoff(
    result: RobustRecourseResult, models: Sequence[DecisionModel]
) -> dict[str, float]:
    """Cost increase against validity gain, under later (or retrained variant) models.

    Over the people with both a minimal and a robust recourse, the share of ``models`` that
    approve each recourse point (:func:`governance.variants.forward_validity`), averaged.

    Parameters
    ----------
    result : RobustRecourseResult
    models : sequence of DecisionModel
        The new version, or retrained variants of it.

    Returns
    -------
    dict
        ``pairs``, ``minimal_validity``, ``robust_validity``, ``validity_gain`` (robust minus
        minimal), ``mean_minimal_cost``, ``mean_robust_cost``, ``mean_cost_increase`` and
        ``cost_per_validity_point`` (mean cost increase per percentage point of validity gained;
        NaN when nothing is gained).

    Raises
    ------
    RobustnessError
        If ``models`` is empty.
    """
    both = np.flatnonzero(result.issued & (result.minimal.status == "recourse"))
    v_min = forward_validity(models, result.minimal.x_after[both])
    v_rob = forward_validity(models, result.base.x_after[both])
    nan = float("nan")
    out = {
        "pairs": int(both.size),
        "minimal_validity": float(v_min.mean()) if both.size else nan,
        "robust_validity": float(v_rob.mean()) if both.size else nan,
        "mean_minimal_cost": float(result.minimal.cost[both].mean()) if both.size else nan,
        "mean_robust_cost": float(result.base.cost[both].mean()) if both.size else nan,
        "mean_cost_increase": float(result.cost_increase[both].mean()) if both.size else nan,
    }
    out["validity_gain"] = out["robust_validity"] - out["minimal_validity"]
    gain = 100 * out["validity_gain"]
    out["cost_per_validity_point"] = out["mean_cost_increase"] / gain if gain > 0 else nan
    return out


# ------------------------------------------------------------------------------------------
# internals
# ------------------------------------------------------------------------------------------
class _Bar:
    """The ``R >= tau`` test with a cache by point, in a lazy and a full flavour."""

    def __init__(self, model, scale, tau, k, sigma, seed, batch_rows) -> None:
        self.model, self.scale, self.tau = model, scale, tau
        self.kw = {"k": k, "sigma": sigma, "seed": seed, "batch_rows": batch_rows}
        self.known: dict[bytes, float] = {}  # R, or -inf when rejected early (R < tau)
        self.seen: list[np.ndarray] = []  # candidates the lazy test let through, per call

    @staticmethod
    def _keys(P: np.ndarray) -> list[bytes]:
        P = np.ascontiguousarray(P, dtype=float) + 0.0  # -0.0 and 0.0 are the same point
        return [row.tobytes() for row in P]

    def remember(self, P: np.ndarray, R: np.ndarray) -> None:
        for key, r in zip(self._keys(P), R, strict=True):
            self.known[key] = float(r)

    def evaluate(self, P: np.ndarray) -> None:
        """Score the points not yet known."""
        keys = self._keys(P)
        new = [i for i, key in enumerate(keys) if key not in self.known]
        if not new:
            return
        _, R = stability_at_least(self.model, P[new], self.scale, self.tau, **self.kw)
        R = np.where(np.isnan(R), -np.inf, R)  # dropped early: known to be below tau
        for i, r in zip(new, R, strict=True):
            self.known[keys[i]] = float(r)

    def lookup(self, P: np.ndarray) -> np.ndarray:
        """``R`` per point: NaN where not scored, -inf where only known to be below tau."""
        return np.array([self.known.get(key, np.nan) for key in self._keys(P)], dtype=float)

    def passes(self, P: np.ndarray) -> np.ndarray:
        return np.greater_equal(self.lookup(P), self.tau)  # False for NaN

    def lazy(self, P: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Candidates that might pass: score >= tau and not known to fail."""
        ok = np.asarray(scores) >= self.tau
        idx = np.flatnonzero(ok)
        if idx.size:
            R = self.lookup(P[idx])
            ok[idx] = np.isnan(R) | np.greater_equal(R, self.tau)
            unknown = idx[np.isnan(R)]
            if unknown.size:
                self.seen.append(np.array(P[unknown], dtype=float))
        return ok

    def look_ahead(self, failed: np.ndarray, width: int) -> None:
        """Score the ``width`` candidates that followed each failed point in its lazy call.

        The search hands a person's candidates over in cost order, so these are likely that
        person's next ones; scoring them now saves a search pass per failure. Only speed
        depends on it: every verdict is exact whatever is scored here.
        """
        if failed.size == 0 or not self.seen:
            return
        wanted = set(self._keys(failed))
        ahead = []
        for C in self.seen:
            pos = [i for i, key in enumerate(self._keys(C)) if key in wanted]
            ahead += [C[i + 1 : i + 1 + width] for i in pos]
        if ahead:
            self.evaluate(np.unique(np.concatenate(ahead), axis=0))

    def full(self, P: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Candidates that pass, scoring for stability those not yet known."""
        ok = np.asarray(scores) >= self.tau
        if ok.any():
            idx = np.flatnonzero(ok)
            self.evaluate(P[idx])
            ok[idx] = self.passes(P[idx])
        return ok


@dataclass
class _ScoreCache(DecisionModel):
    """The issuing model with its scores remembered by point, for repeated search passes."""

    _scores: dict[bytes, float] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def wrap(cls, model: DecisionModel) -> _ScoreCache:
        return cls(**{f.name: getattr(model, f.name) for f in fields(DecisionModel)})

    def score(self, X: np.ndarray | pd.DataFrame) -> np.ndarray:
        M = self.matrix(X) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)
        keys = [row.tobytes() for row in np.ascontiguousarray(M) + 0.0]
        new = [i for i, key in enumerate(keys) if key not in self._scores]
        if new:
            for i, s in zip(new, super().score(M[new]), strict=True):
                self._scores[keys[i]] = float(s)
        return np.array([self._scores[key] for key in keys], dtype=float)


@dataclass
class _Columns:
    """Per-row arrays of a RecourseResult, to be overwritten pass by pass."""

    status: np.ndarray
    complete: np.ndarray
    n_points: np.ndarray
    action: np.ndarray
    cost: np.ndarray
    score_after: np.ndarray
    x_after: np.ndarray

    @classmethod
    def of(cls, r: RecourseResult) -> _Columns:
        return cls(
            r.status.astype(object).copy(), r.complete.copy(), r.n_points.copy(),
            r.action.copy(), r.cost.copy(), r.score_after.copy(), r.x_after.copy(),
        )

    def put(self, rows: np.ndarray, r: RecourseResult, add_points: bool) -> None:
        self.status[rows] = r.status
        self.complete[rows] = r.complete
        self.n_points[rows] = self.n_points[rows] + r.n_points if add_points else r.n_points
        self.action[rows] = r.action
        self.cost[rows] = r.cost
        self.score_after[rows] = r.score_after
        self.x_after[rows] = r.x_after

    def result(self, like: RecourseResult) -> RecourseResult:
        return replace(
            like,
            status=self.status.astype(str),
            complete=self.complete,
            n_points=self.n_points,
            action=self.action,
            cost=self.cost,
            score_after=self.score_after,
            x_after=self.x_after,
        )
