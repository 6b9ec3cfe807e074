"""Influence of deleting training rows on a logistic-regression pipeline, and exact refits.

Everything here works in the pipeline's *transformed* feature space: the numeric block after the
recipe's StandardScaler (or passthrough) and the fixed one-hot block, plus a constant column for
the intercept. ``z`` below is one such row of length ``p' = p + 1``.

Objective and formulas
----------------------
scikit-learn's binary ``LogisticRegression`` with an L2 penalty minimises

    F(theta) = C * sum_i w_i * l_i(theta) + 1/2 * ||beta||^2        (intercept not penalised)

where ``l_i`` is the log-loss of row i, ``w_i`` its class weight (1 without ``class_weight``) and
``beta`` the coefficients without the intercept. Internally it minimises ``F / (C * sum_i w_i)``
(mean loss plus ``1 / (2 C sum w) ||beta||^2``); the minimiser is the same. We divide by ``C``::

    F(theta) / C = sum_i w_i l_i(theta) + (lambda / 2) ||beta||^2,   lambda = 1/C (0 if C = inf)

At the optimum theta, with ``p_i = sigmoid(z_i . theta)`` the probability of ``classes_[1]`` and
``y_i`` its 0/1 indicator:

- gradient of row i: ``g_i = w_i (p_i - y_i) z_i``;
- Hessian: ``H = sum_i h_i z_i z_i^T + lambda * P`` with curvature ``h_i = w_i p_i (1 - p_i)`` and
  ``P = diag(1, ..., 1, 0)``;
- leverage ``lev_i = h_i z_i^T H^-1 z_i`` (in [0, 1)).

Removing row i leaves ``F_-i = F - w_i l_i``. One Newton step from theta on ``F_-i`` uses the
gradient ``-g_i`` and the Hessian ``H_-i = H - h_i z_i z_i^T``; by Sherman-Morrison

    delta_theta_i = H_-i^-1 g_i = w_i (p_i - y_i) H^-1 z_i / (1 - lev_i)

so the change of the logit of ``classes_[1]`` at a query row ``q`` is

    delta_logit_i(q) = w_i (p_i - y_i) (q^T H^-1 z_i) / (1 - lev_i).        (1)

Without the ``1 / (1 - lev_i)`` factor this is the classic influence function (Koh and Liang,
2017) ``grad logit(q)^T H^-1 grad loss_i``; the factor makes it the exact leave-one-out Newton
step, which matters for the high-leverage rows that fragility searches look for. For a *set* T of
rows the same one-step Newton with the Woodbury identity gives

    delta_logit_T(q) = a_T^T (I - D_T G_TT)^-1 r_T                               (2)

with ``a_T = Z_T H^-1 q``, ``G_TT = Z_T H^-1 Z_T^T``, ``D_T = diag(h_T)`` and
``r_T = w_T (p_T - y_T)``. For |T| = 1 it reduces to (1).

Scaler drift. The recipe refits its StandardScaler without the deleted rows. Centring does not
matter (the intercept is unpenalised) but the new scales ``s'_j = rho_j s_j`` reweight the
penalty: in the old coordinates the objective becomes ``... + lambda/2 sum_j rho_j^2 beta_j^2``.
With standardised values ``z`` over the m rows of the fit, removing a set T gives
``rho_j^2 = (m - sum_T z_j^2) / (m - |T|) - (sum_T z_j / (m - |T|))^2``. Both changes together
are a low-rank update of the Hessian, ``H_T = H + W^T diag(lam) W`` with ``W`` stacking ``Z_T``
and the unit vectors ``E`` of the s scaled columns, ``lam = (-h_T, lambda (rho^2 - 1))``, and of
the gradient, ``-W^T v`` with ``v = (r_T, -lambda (rho^2 - 1) beta)``. Woodbury gives

    delta_logit_T(q) = b^T (I + diag(lam) K)^-1 v,   b = W H^-1 q,   K = W H^-1 W^T      (2')

(a (|T| + s)-dimensional solve per set and query). Without scaled columns (or with lambda = 0)
(2') is (2). All effects computed here use (2') (times -1 when the favourable class is
``classes_[0]``).

What is exact and what is approximate
-------------------------------------
(1), (2) and (2') are *approximations*: one Newton step from the full-data optimum. They are
exact for a quadratic loss; the error is of second order in the change. Measured against exact
refits by ``bench/influence_error.py`` on 8,000 (deletion set, query) pairs (60 to 400 training
rows, C = 0.1 to 100, Gaussian and t(2) features, the greedy sets of 1 to 5 rows the
approximate fragility search builds), the error stayed below ``0.002 + 0.5 |change|`` logits in
every pair with 200 or 400 rows; with 60 or 100 rows in every pair with C <= 1, but only in 85 %
to 98 % of pairs with C = 10 or 100 (weak regularisation: the optimum moves far and one Newton
step misses by more). Largest relative errors (changes above 0.01 logit): 50 % at 200 rows,
18 % at 400; at 20,000 rows the error stayed below 0.4 % of the change.
:meth:`LogisticProblem.refit` is *exact*: it refits the scaler on the remaining rows as the recipe
does and solves the same objective (strictly convex for C < inf, so one optimum) by Newton's
method to a gradient 10^6 times below scikit-learn's default ``tol``, warm-started at a nearby
optimum. The recipe's own solver stops earlier: at ``tol=1e-4`` lbfgs leaves logit errors up to
about 0.004 on the benchmark population, which at 100,000 rows is as large as the effect of a few
deletions; this is why refits here do not call the recipe's solver.

The module reads best whole (about 800 lines): the formulas above, the estimator that
evaluates them in blocks and the exact refit that checks them share one notation and one
design matrix, and splitting them would separate each formula from its only implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.linalg import cho_factor, cho_solve
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from governance.exceptions import FragilityError

# Solvers that minimise the objective above; liblinear penalises the intercept, so its optimum
# differs and it is not supported.
SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")
# Upper bound on the number of float64 elements in any temporary block (32 MiB).
CHUNK_ELEMENTS = 1 << 22
# Exact refits stop when max |gradient| / sum(weights) <= NEWTON_TOL (lbfgs's own test, tighter).
NEWTON_TOL = 1e-10
NEWTON_MAX_ITER = 100


def supports_influence(pipeline: object) -> bool:
    """Whether ``pipeline`` is a recipe-built binary L2 logistic regression we can differentiate.

    Parameters
    ----------
    pipeline : object
        A fitted estimator, normally a Pipeline from :meth:`TrainingRecipe.build`.

    Returns
    -------
    bool
        True for ``Pipeline([("pre", ColumnTransformer), ("model", LogisticRegression)])`` with
        two classes, a solver from ``SOLVERS`` and an L2 penalty (or none).
    """
    if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != ["pre", "model"]:
        return False
    pre, lr = pipeline.named_steps["pre"], pipeline.named_steps["model"]
    if not isinstance(lr, LogisticRegression) or not hasattr(lr, "coef_"):
        return False
    if len(lr.classes_) != 2 or lr.solver not in SOLVERS:
        return False
    l2 = lr.l1_ratio in (0, 0.0, None) and lr.penalty in ("deprecated", "l2")
    unpenalised = lr.penalty is None or np.inf == lr.C
    if not (l2 or unpenalised):
        return False
    return isinstance(pre, ColumnTransformer) and _blocks(pre) is not None


def _blocks(pre: ColumnTransformer) -> tuple[list[str], object, list[str]] | None:
    """Return (numeric columns, fitted numeric transformer or None, categorical columns).

    None when ``pre`` is not the recipe's layout: "num" (StandardScaler or passthrough), "cat"
    (OneHotEncoder without ``drop``), nothing else kept. The layout is read from the constructor
    spec, because a fitted ColumnTransformer replaces "passthrough" with a FunctionTransformer.
    """
    if pre.remainder != "drop" or not hasattr(pre, "transformers_"):
        return None
    num_cols: list[str] = []
    num_tr: object = None
    cat_cols: list[str] = []
    for name, tr, cols in pre.transformers:
        if name == "num" and (tr == "passthrough" or isinstance(tr, StandardScaler)):
            num_cols = list(cols)
            num_tr = pre.named_transformers_["num"] if isinstance(tr, StandardScaler) else None
        elif name == "cat" and isinstance(tr, OneHotEncoder) and tr.drop is None:
            cat_cols = list(cols)
        else:
            return None
    return num_cols, num_tr, cat_cols


@dataclass(frozen=True)
class LogisticFit:
    """One fitted logistic regression in transformed space, with the scaler statistics it used.

    Attributes
    ----------
    coef : ndarray of shape (p,)
        Coefficients of ``classes_[1]`` on the transformed features (numeric block first).
    intercept : float
    mean, scale : ndarray of shape (p_num,)
        StandardScaler statistics of the numeric block (0 and 1 when numeric inputs pass through).
    """

    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray

    @property
    def theta(self) -> np.ndarray:
        """Coefficients followed by the intercept, shape (p + 1,)."""
        return np.append(self.coef, self.intercept)


class LogisticProblem:
    """The training problem of a recipe-built logistic-regression pipeline, row by row.

    Holds the raw numeric block and the fixed one-hot block of every training row once, so any
    subset of rows can be put in the transformed space of any refit without pandas.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted pipeline accepted by :func:`supports_influence`.
    frame : DataFrame of shape (n_samples, n_features)
        Training rows as the pipeline expects them (schema columns, categories as str).
    y : array-like of shape (n_samples,)
        Training labels in the estimator's own classes.
    favourable_class : object
        The label whose probability the decision model scores.

    Raises
    ------
    FragilityError
        If the pipeline is not supported or labels fall outside the estimator's classes.
    """

    def __init__(
        self, pipeline: Pipeline, frame: pd.DataFrame, y: np.ndarray, favourable_class: object
    ) -> None:
        if not supports_influence(pipeline):
            raise FragilityError(
                "pipeline is not a recipe-built binary L2 LogisticRegression with a "
                f"solver ({', '.join(SOLVERS)}); got {pipeline!r}"
            )
        self.pipeline = pipeline
        pre, self.estimator = pipeline.named_steps["pre"], pipeline.named_steps["model"]
        num_cols, num_tr, cat_cols = _blocks(pre)  # type: ignore[misc]
        self._num_cols, self._cat_cols = num_cols, cat_cols
        self._scaler = num_tr if isinstance(num_tr, StandardScaler) else None
        self._onehot = pre.named_transformers_["cat"] if cat_cols else None
        classes = list(self.estimator.classes_)
        if favourable_class not in classes:
            raise FragilityError(
                f"favourable class {favourable_class!r} not among estimator classes {classes}"
            )
        self.sign = 1.0 if classes.index(favourable_class) == 1 else -1.0
        y = np.asarray(y)
        unknown = set(np.unique(y).tolist()) - set(classes)
        if unknown:
            raise FragilityError(
                f"training labels {sorted(map(str, unknown))} not among estimator classes {classes}"
            )
        self.labels = y
        self.y01 = (y == classes[1]).astype(float)
        self.C = float(self.estimator.C)
        self.reg = 0.0 if (self.estimator.penalty is None or np.inf == self.C) else 1.0 / self.C
        self.fit_intercept = bool(self.estimator.fit_intercept)
        self.numeric, self.categorical = self.blocks(frame)

    # -- design matrices ---------------------------------------------------------------------
    def blocks(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Split ``frame`` into its raw numeric block and its one-hot block (shapes (n, .))."""
        num = frame.loc[:, self._num_cols].to_numpy(dtype=float)
        if self._onehot is None:
            return num, np.empty((len(frame), 0))
        cat = np.asarray(self._onehot.transform(frame.loc[:, self._cat_cols]), dtype=float)
        return num, cat

    def design(self, fit: LogisticFit, numeric: np.ndarray, categorical: np.ndarray) -> np.ndarray:
        """Transformed rows with a trailing column of ones (for the intercept), shape (n, p + 1)."""
        n, p_num = numeric.shape
        Z = np.empty((n, p_num + categorical.shape[1] + 1))
        np.subtract(numeric, fit.mean, out=Z[:, :p_num])
        Z[:, :p_num] /= fit.scale
        Z[:, p_num:-1] = categorical
        Z[:, -1] = 1.0 if self.fit_intercept else 0.0
        return Z

    def train_design(self, fit: LogisticFit, rows: np.ndarray) -> np.ndarray:
        """Design of the training rows at positions ``rows`` under ``fit``'s scaler statistics."""
        return self.design(fit, self.numeric[rows], self.categorical[rows])

    def logit(self, fit: LogisticFit, Zq: np.ndarray) -> np.ndarray:
        """Logit of the favourable class at design rows ``Zq`` (shape (R, p + 1))."""
        return self.sign * (Zq @ fit.theta)

    # -- fits --------------------------------------------------------------------------------
    def root(self) -> LogisticFit:
        """The fitted pipeline as a :class:`LogisticFit` (no refit)."""
        p_num = len(self._num_cols)
        mean = self._scaler.mean_ if self._scaler is not None else None
        scale = self._scaler.scale_ if self._scaler is not None else None
        return LogisticFit(
            coef=np.asarray(self.estimator.coef_, dtype=float).ravel().copy(),
            intercept=float(np.ravel(self.estimator.intercept_)[0]) if self.fit_intercept else 0.0,
            mean=np.zeros(p_num) if mean is None else np.asarray(mean, dtype=float).copy(),
            scale=np.ones(p_num) if scale is None else np.asarray(scale, dtype=float).copy(),
        )

    def refit(self, rows: np.ndarray, start: LogisticFit | None = None) -> LogisticFit:
        """Exact optimum of the recipe's objective on the training rows at positions ``rows``.

        The scaler is refitted on the remaining rows as the recipe would (a clone of the fitted
        StandardScaler); then Newton's method, warm-started at ``start`` mapped into the new
        coordinates (same decision function), minimises the objective of the module docstring
        until the largest gradient entry per unit of total weight is below ``NEWTON_TOL`` (the
        quantity scikit-learn's lbfgs compares with ``tol``). The objective is strictly convex,
        so this is the optimum every solver of the recipe converges to; we solve it far below
        the recipe's own ``tol`` so that deletion effects are not drowned by stopping noise.

        Parameters
        ----------
        rows : ndarray of int
            Positions of the training rows to keep.
        start : LogisticFit or None
            Warm start; None starts from zero.

        Returns
        -------
        LogisticFit

        Raises
        ------
        FragilityError
            If the remaining rows hold a single class or Newton's method does not converge.
        """
        rows = np.asarray(rows)
        y = self.labels[rows]
        if np.unique(y).size < 2:
            raise FragilityError(
                f"cannot refit on {len(rows)} rows holding a single class {y[:1].tolist()}"
            )
        num = self.numeric[rows]
        p_num = num.shape[1]
        if self._scaler is not None and p_num:
            sc = clone(self._scaler).fit(num)
            mean = np.zeros(p_num) if sc.mean_ is None else np.asarray(sc.mean_, dtype=float)
            scale = np.ones(p_num) if sc.scale_ is None else np.asarray(sc.scale_, dtype=float)
        else:
            mean, scale = np.zeros(p_num), np.ones(p_num)
        d = p_num + self.categorical.shape[1] + 1
        theta = np.zeros(d)
        if start is not None:
            theta[:-1] = start.coef
            # Same decision function in the new coordinates: w' = w s'/s, b' = b + sum w (m' - m)/s.
            theta[:p_num] = start.coef[:p_num] * scale / start.scale
            shift = float(np.sum(start.coef[:p_num] * (mean - start.mean) / start.scale))
            theta[-1] = start.intercept + shift
        fit = LogisticFit(theta[:-1], float(theta[-1]), mean, scale)
        Z = self.design(fit, num, self.categorical[rows])
        theta = _newton(Z, self.y01[rows], self.weights(rows), self.reg, self.fit_intercept, theta)
        return LogisticFit(theta[:-1].copy(), float(theta[-1]), mean, scale)

    def weights(self, rows: np.ndarray) -> np.ndarray:
        """Per-row weights ``w_i`` the estimator applies on ``rows`` (its ``class_weight``)."""
        cw = self.estimator.class_weight
        if cw is None:
            return np.ones(len(rows))
        return compute_sample_weight(cw, self.labels[rows])

    def influence(self, fit: LogisticFit, rows: np.ndarray) -> Influence:
        """Influence quantities of ``fit`` taken as the optimum on the training rows ``rows``."""
        Z = self.train_design(fit, rows)
        p = 1.0 / (1.0 + np.exp(-(Z @ fit.theta)))
        w = self.weights(rows)
        scaled = np.empty(0, dtype=int)
        if self._scaler is not None and len(self._num_cols):
            # Columns the scaler standardised on exactly these rows (constant ones keep scale 1).
            var = Z[:, : len(self._num_cols)].var(axis=0)
            scaled = np.flatnonzero(np.abs(var - 1.0) < 1e-6)
        return Influence.from_design(
            Z,
            self.y01[rows],
            p,
            w,
            self.reg,
            self.fit_intercept,
            self.sign,
            rows,
            theta=fit.theta,
            scaled=scaled,
        )


@dataclass(frozen=True)
class Influence:
    """Hessian factor and per-row terms of formula (2') at one fitted optimum.

    Attributes
    ----------
    rows : ndarray of int, shape (m,)
        Training positions of the design rows.
    Z : ndarray of shape (m, p + 1)
    residual : ndarray of shape (m,)
        ``r_i = w_i (p_i - y_i)``.
    curvature : ndarray of shape (m,)
        ``h_i = w_i p_i (1 - p_i)``.
    zhz : ndarray of shape (m,)
        ``z_i^T H^-1 z_i``; the leverage is ``h_i zhz_i``.
    factor : tuple
        Cholesky factor of H from :func:`scipy.linalg.cho_factor`.
    sign : float
        +1 when the favourable class is ``classes_[1]``, else -1 (effects are on its logit).
    reg : float
        ``lambda = 1 / C``.
    scaled : ndarray of int, shape (s,)
        Design columns standardised by the recipe's scaler on exactly these rows.
    beta_scaled : ndarray of shape (s,)
        Coefficients on those columns.
    """

    rows: np.ndarray
    Z: np.ndarray
    residual: np.ndarray
    curvature: np.ndarray
    zhz: np.ndarray
    factor: tuple
    sign: float
    reg: float = 0.0
    scaled: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    beta_scaled: np.ndarray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def from_design(
        cls,
        Z: np.ndarray,
        y01: np.ndarray,
        p: np.ndarray,
        w: np.ndarray,
        reg: float,
        fit_intercept: bool,
        sign: float,
        rows: np.ndarray,
        theta: np.ndarray | None = None,
        scaled: np.ndarray | None = None,
    ) -> Influence:
        """Build from a design, 0/1 labels, fitted probabilities, weights and ``lambda``.

        ``theta`` and ``scaled`` (columns standardised on exactly these rows) switch on the
        scaler-drift terms of (2'); without them the effects are those of (2).
        """
        h = w * p * (1.0 - p)
        d = Z.shape[1]
        H = np.zeros((d, d))
        step = max(1, CHUNK_ELEMENTS // max(d, 1))
        for s in range(0, len(Z), step):
            Zc = Z[s : s + step]
            H += Zc.T @ (Zc * h[s : s + step, None])
        penalty = np.full(d, reg)
        penalty[-1] = 0.0 if fit_intercept else 1.0  # without intercept the column is all zeros
        H[np.diag_indices(d)] += penalty
        # A tiny ridge only when H is singular (no penalty and collinear columns).
        jitter = 0.0
        for _ in range(8):
            try:
                factor = cho_factor(H + jitter * np.eye(d), lower=True)
                break
            except np.linalg.LinAlgError:
                jitter = max(jitter * 10.0, 1e-10 * max(1.0, float(np.trace(H)) / d))
        else:
            raise FragilityError(f"Hessian of the logistic loss is singular (dimension {d})")
        zhz = np.empty(len(Z))
        for s in range(0, len(Z), step):
            Zc = Z[s : s + step]
            zhz[s : s + step] = np.einsum("ij,ji->i", Zc, cho_solve(factor, Zc.T))
        use = scaled is not None and theta is not None and reg > 0 and len(Z) > 5
        scaled = np.asarray(scaled if use else [], dtype=int)
        return cls(
            rows=np.asarray(rows),
            Z=Z,
            residual=w * (p - y01),
            curvature=h,
            zhz=zhz,
            factor=factor,
            sign=sign,
            reg=float(reg),
            scaled=scaled,
            beta_scaled=np.asarray(theta)[scaled] if scaled.size else np.empty(0),
        )

    @property
    def leverage(self) -> np.ndarray:
        """``h_i z_i^T H^-1 z_i``, in [0, 1)."""
        return np.clip(self.curvature * self.zhz, 0.0, 1.0 - 1e-12)

    def solve(self, B: np.ndarray) -> np.ndarray:
        """Return ``H^-1 B`` for B of shape (p + 1,) or (p + 1, k)."""
        return cho_solve(self.factor, B)

    def _scaled_inverse(self) -> tuple[np.ndarray, np.ndarray]:
        """``H^-1`` on the scaled columns, shape (p + 1, s), and its (s, s) block."""
        E = np.zeros((self.Z.shape[1], self.scaled.size))
        E[self.scaled, np.arange(self.scaled.size)] = 1.0
        Hs = self.solve(E)
        return Hs, Hs[self.scaled]

    def _drift(self, s1: np.ndarray, s2: np.ndarray, t: int) -> np.ndarray:
        """``lambda (rho^2 - 1)`` per scaled column once t rows go (z sums s1, z^2 sums s2)."""
        m = len(self.Z)
        return self.reg * ((m - s2) / (m - t) - (s1 / (m - t)) ** 2 - 1.0)

    def _row_solutions(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-row ``x_i = (I + Lambda_i K_i)^-1 v_i`` of (2') with |T| = 1, and ``H^-1 E``.

        For one row i, (2') is ``b_iq^T x_i`` with ``b_iq = (z_i^T H^-1 q, q^T H^-1 E)``; ``x_i``
        (shape (m, 1 + s)) does not depend on the query.
        """
        n, ns = len(self.Z), self.scaled.size
        if not ns:
            return (self.residual / (1.0 - self.leverage))[:, None], np.zeros((self.Z.shape[1], 0))
        Hs, Hss = self._scaled_inverse()
        zh = self.Z @ Hs
        zs = self.Z[:, self.scaled]
        x = np.empty((n, ns + 1))
        step = max(1, CHUNK_ELEMENTS // (ns + 1) ** 2)
        for s in range(0, n, step):
            sl = slice(s, s + step)
            drift = self._drift(zs[sl], zs[sl] ** 2, 1)
            lam = np.concatenate([-self.curvature[sl, None], drift], axis=1)
            K = np.empty((len(drift), ns + 1, ns + 1))
            K[:, 0, 0] = self.zhz[sl]
            K[:, 0, 1:] = zh[sl]
            K[:, 1:, 0] = zh[sl]
            K[:, 1:, 1:] = Hss
            v = np.concatenate([self.residual[sl, None], -drift * self.beta_scaled], axis=1)
            A = np.eye(ns + 1) + lam[:, :, None] * K
            x[sl] = np.linalg.solve(A, v[..., None])[..., 0]
        return x, Hs

    def effects(self, Q: np.ndarray) -> Iterator[tuple[slice, slice, np.ndarray]]:
        """Formula (2') for every single row and query, in bounded blocks.

        Parameters
        ----------
        Q : ndarray of shape (R, p + 1)
            Query rows in the same design space.

        Yields
        ------
        query_block, row_block : slice
            Positions into ``Q`` and into ``self.rows``; blocks come grouped by query block.
        effect : ndarray of shape (queries in block, rows in block)
            Change of the favourable logit at each query when the row is removed.
        """
        x, Hs = self._row_solutions()
        V = self.solve(Q.T)  # (p + 1, R)
        QHs = Q @ Hs
        n, R = len(self.Z), Q.shape[0]
        r_step = max(1, min(R, 1024))
        n_step = max(1, CHUNK_ELEMENTS // r_step)
        for r0 in range(0, R, r_step):
            qb = slice(r0, min(R, r0 + r_step))
            for n0 in range(0, n, n_step):
                nb = slice(n0, min(n, n0 + n_step))
                yield qb, nb, self._block(V[:, qb], QHs[qb], x, np.arange(nb.start, nb.stop))

    def _block(self, V: np.ndarray, QHs: np.ndarray, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Effects (queries, rows) for query columns ``V = H^-1 Q^T`` and local row indices."""
        E = (V.T @ self.Z[rows].T) * x[rows, 0]
        if QHs.shape[1]:
            E += QHs @ x[rows, 1:].T
        E *= self.sign
        return E

    def top_removals(self, Q: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` rows whose removal lowers the favourable logit most, per query.

        Exact top-m of formula (2') over all rows, found without scanning every (query, row)
        pair: by Cauchy-Schwarz in the ``H^-1`` inner product, ``|effect_iq| <= g_i c_q`` with
        ``g_i = |x_i0| sqrt(z_i^T H^-1 z_i) + ||x_i,1:||`` and ``c_q = max(sqrt(q^T H^-1 q),
        ||q^T H^-1 E||)``. Rows are visited in decreasing ``g_i``; a query stops as soon as
        ``-g_next c_q`` is no lower than its current m-th best value.

        Parameters
        ----------
        Q : ndarray of shape (R, p + 1)
        m : int
            How many rows to keep per query (at most the number of rows).

        Returns
        -------
        local : ndarray of int, shape (R, m)
            Indices into ``self.rows``, most negative effect first (equal effects: lower index
            first; which of several rows tied at the m-th place is kept is deterministic but
            arbitrary).
        effect : ndarray of shape (R, m)
            Their estimated effects, ascending.
        """
        n, R = len(self.Z), Q.shape[0]
        m = min(m, n)
        x, Hs = self._row_solutions()
        V = self.solve(Q.T)
        QHs = Q @ Hs
        g = np.abs(x[:, 0]) * np.sqrt(np.maximum(self.zhz, 0.0)) + np.linalg.norm(x[:, 1:], axis=1)
        c = np.maximum(
            np.sqrt(np.maximum(np.einsum("rd,dr->r", Q, V), 0.0)), np.linalg.norm(QHs, axis=1)
        )
        order = np.argsort(-g, kind="stable")
        g_sorted = np.append(g[order], 0.0)
        # Slightly inflate the bound so rounding can never stop a query too early.
        c = c * (1.0 + 1e-9) + 1e-300
        val = np.full((R, m), np.inf)
        idx = np.full((R, m), n, dtype=np.int64)
        active = np.arange(R)
        start = 0
        step = max(m, 1024)
        while active.size and start < n:
            chunk = order[start : start + step]
            q_step = max(1, CHUNK_ELEMENTS // (len(chunk) + m))
            for q0 in range(0, active.size, q_step):
                qa = active[q0 : q0 + q_step]
                E = self._block(V[:, qa], QHs[qa], x, chunk)
                cand_val = np.hstack([val[qa], E])
                cand_idx = np.hstack([idx[qa], np.broadcast_to(chunk, E.shape)])
                part = np.argpartition(cand_val, m - 1, axis=1)[:, :m]
                val[qa] = np.take_along_axis(cand_val, part, axis=1)
                idx[qa] = np.take_along_axis(cand_idx, part, axis=1)
            start += len(chunk)
            g_next = g_sorted[min(start, n)]
            active = active[-g_next * c[active] < val[active].max(axis=1)]
            step = min(2 * step, 1 << 16)
        out = np.lexsort((idx, val), axis=1)
        return np.take_along_axis(idx, out, axis=1), np.take_along_axis(val, out, axis=1)

    def shortlist_terms(self, Q: np.ndarray, local: np.ndarray) -> dict[str, np.ndarray]:
        """Terms of formula (2') for each query and its own shortlist of rows.

        Parameters
        ----------
        Q : ndarray of shape (R, p + 1)
        local : ndarray of int, shape (R, M)
            Indices into ``self.rows``, one shortlist per query.

        Returns
        -------
        dict of ndarray
            ``a`` (R, M): ``z_c^T H^-1 q``; ``G`` (R, M, M): ``z_c^T H^-1 z_c'``; ``h``, ``r``
            (R, M): curvature and residual; ``z`` (R, M, s): the rows' scaled features;
            ``zh`` (R, M, s) and ``qh`` (R, s): ``z_c^T H^-1`` and ``q^T H^-1`` on the scaled
            columns; ``hss`` (s, s): the scaled block of ``H^-1``.
        """
        R, M = local.shape
        d = self.Z.shape[1]
        a = np.empty((R, M))
        G = np.empty((R, M, M))
        step = max(1, CHUNK_ELEMENTS // max(1, M * d))
        for s in range(0, R, step):
            Zs = self.Z[local[s : s + step]]  # (b, M, d)
            b = Zs.shape[0]
            W = self.solve(Zs.reshape(b * M, d).T).T.reshape(b, M, d)  # rows of Z_s H^-1
            G[s : s + step] = np.einsum("bmd,bnd->bmn", W, Zs)
            a[s : s + step] = np.einsum("bmd,bd->bm", W, Q[s : s + step])
        Hs, Hss = self._scaled_inverse()
        return {
            "a": a,
            "G": G,
            "h": self.curvature[local],
            "r": self.residual[local],
            "z": self.Z[:, self.scaled][local],
            "zh": (self.Z[local.ravel()] @ Hs).reshape(R, M, -1),
            "qh": Q @ Hs,
            "hss": Hss,
        }

    def set_effects(self, terms: dict[str, np.ndarray], sets: np.ndarray) -> np.ndarray:
        """Formula (2') for sets of shortlisted rows.

        Parameters
        ----------
        terms : dict
            Output of :meth:`shortlist_terms` for B queries.
        sets : ndarray of int, shape (B, C, t)
            For each query, C candidate sets of t shortlist positions.

        Returns
        -------
        ndarray of shape (B, C)
            Estimated change of the favourable logit when each set is removed.
        """
        B, C, t = sets.shape
        ns = self.scaled.size
        rb = np.arange(B)[:, None, None]
        b = np.zeros((B, C, t + ns))
        K = np.zeros((B, C, t + ns, t + ns))
        lam = np.zeros((B, C, t + ns))
        v = np.zeros((B, C, t + ns))
        b[..., :t] = terms["a"][rb, sets]
        K[..., :t, :t] = terms["G"][rb[..., None], sets[..., :, None], sets[..., None, :]]
        lam[..., :t] = -terms["h"][rb, sets]
        v[..., :t] = terms["r"][rb, sets]
        if ns:
            z = terms["z"][rb, sets]  # (B, C, t, s)
            drift = self._drift(z.sum(axis=2), (z**2).sum(axis=2), t)  # (B, C, s)
            zh = terms["zh"][rb, sets]  # (B, C, t, s)
            b[..., t:] = terms["qh"][:, None, :]
            K[..., :t, t:] = zh
            K[..., t:, :t] = np.swapaxes(zh, -1, -2)
            K[..., t:, t:] = terms["hss"]
            lam[..., t:] = drift
            v[..., t:] = -drift * self.beta_scaled
        return group_effect(b, K, lam, v, self.sign)


def group_effect(
    b: np.ndarray, K: np.ndarray, lam: np.ndarray, v: np.ndarray, sign: float
) -> np.ndarray:
    """One-step Newton change of the favourable logit, ``sign * b^T (I + diag(lam) K)^-1 v``.

    This is formula (2') written as one low-rank update ``H + W^T diag(lam) W`` of the Hessian,
    with ``W`` stacking the removed rows' ``z`` and the unit vectors of the scaled columns, and
    the gradient ``W^T v``.

    Parameters
    ----------
    b : ndarray of shape (..., d)
        ``W H^-1 q``: ``a_T`` then ``q^T H^-1`` on the scaled columns.
    K : ndarray of shape (..., d, d)
        ``W H^-1 W^T``.
    lam : ndarray of shape (..., d)
        ``-h_T`` then ``lambda (rho^2 - 1)``.
    v : ndarray of shape (..., d)
        ``r_T`` then ``-lambda (rho^2 - 1) beta``.
    sign : float
        +1 when the favourable class is ``classes_[1]``, else -1.

    Returns
    -------
    ndarray of shape (...)
    """
    d = b.shape[-1]
    A = np.eye(d) + lam[..., :, None] * K
    x = np.linalg.solve(A, v[..., None])[..., 0]
    return sign * np.sum(b * x, axis=-1)


def _objective(
    Z: np.ndarray, y01: np.ndarray, w: np.ndarray, reg: float, theta: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Objective ``sum w l + reg/2 ||beta||^2``, its gradient and the fitted probabilities."""
    z = Z @ theta
    p = 1.0 / (1.0 + np.exp(-z))
    # log(1 + e^z) - y z, computed stably.
    loss = float(np.sum(w * (np.logaddexp(0.0, z) - y01 * z)))
    beta = theta[:-1]
    f = loss + 0.5 * reg * float(beta @ beta)
    return f, _gradient(Z, y01, w, reg, theta, p), p


def _gradient(
    Z: np.ndarray, y01: np.ndarray, w: np.ndarray, reg: float, theta: np.ndarray, p: np.ndarray
) -> np.ndarray:
    g = Z.T @ (w * (p - y01))
    g[:-1] += reg * theta[:-1]
    return g


def _newton(
    Z: np.ndarray,
    y01: np.ndarray,
    w: np.ndarray,
    reg: float,
    fit_intercept: bool,
    theta: np.ndarray,
) -> np.ndarray:
    """Minimise the penalised logistic loss by damped Newton steps from ``theta``."""
    theta = theta.copy()
    if not fit_intercept:
        theta[-1] = 0.0
    d = len(theta)
    penalty = np.full(d, reg)
    penalty[-1] = 0.0 if fit_intercept else 1.0
    sw = float(np.sum(w))
    p = 1.0 / (1.0 + np.exp(-(Z @ theta)))
    g = _gradient(Z, y01, w, reg, theta, p)
    f = float("nan")
    step = max(1, CHUNK_ELEMENTS // max(d, 1))
    for _ in range(NEWTON_MAX_ITER):
        if not fit_intercept:
            g[-1] = 0.0
        if np.max(np.abs(g)) / sw <= NEWTON_TOL:
            return theta
        h = w * p * (1.0 - p)
        H = np.diag(penalty)
        for s in range(0, len(Z), step):
            Zc = Z[s : s + step]
            H += Zc.T @ (Zc * h[s : s + step, None])
        try:
            direction = cho_solve(cho_factor(H, lower=True), g)
        except np.linalg.LinAlgError:
            direction = np.linalg.lstsq(H, g, rcond=None)[0]
        # Next to the optimum a full step that shrinks the gradient tenfold is taken without
        # evaluating f (the log-loss is the costly part); otherwise a line search decides.
        cand = theta - direction
        p_new = 1.0 / (1.0 + np.exp(-(Z @ cand)))
        g_new = _gradient(Z, y01, w, reg, cand, p_new)
        if not fit_intercept:
            g_new[-1] = 0.0
        if np.max(np.abs(g_new)) <= 0.1 * np.max(np.abs(g)):
            theta, g, p, f = cand, g_new, p_new, float("nan")
            continue
        if not np.isfinite(f):
            f = _objective(Z, y01, w, reg, theta)[0]
        t = 1.0
        # Backtracking (Armijo) line search; the slack lets full steps through when the
        # decrease is below the rounding error of f, as it is next to the optimum.
        slack = 1e-12 * max(1.0, abs(f))
        for _ in range(40):
            cand = theta - t * direction
            f_new, g_new, p_new = _objective(Z, y01, w, reg, cand)
            if f_new <= f - 1e-4 * t * float(g @ direction) + slack:
                break
            t *= 0.5
        else:
            if np.max(np.abs(g)) / sw <= 1e3 * NEWTON_TOL:
                return theta  # at float precision; the line search cannot improve further
            raise FragilityError(
                f"Newton refit stalled with max |gradient| {np.max(np.abs(g)) / sw:.3g}; "
                f"expected <= {NEWTON_TOL}"
            )
        theta, f, g, p = cand, f_new, g_new, p_new
    raise FragilityError(
        f"Newton refit did not converge in {NEWTON_MAX_ITER} iterations "
        f"(max |gradient| {np.max(np.abs(g)) / sw:.3g}; expected <= {NEWTON_TOL})"
    )
