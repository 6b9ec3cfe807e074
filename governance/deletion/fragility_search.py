"""Worst-case deletion fragility of issued recourse: how few training deletions invalidate it.

Definition
----------
For a recourse point ``x'`` (a point the current model approves) and a budget ``K``, the greedy
fragility ``k*(x')`` is the number of greedy deletions after which the model retrained without
the deleted rows no longer approves ``x'`` (``score < threshold``), or "more than K" (stored as
-1). A greedy step removes the training row whose removal is estimated to lower the score at
``x'`` most, refits, and repeats from the refitted model. ``k = 0`` means the current model
already rejects ``x'``. Greedy search gives an upper bound on the true minimum number of
deletions. This is the worst-case exposure protocol that follows Pawelczyk et al. (ICLR 2023),
who report that 2 deletions can invalidate up to 95 % of standard recourse; it is not their
algorithm, which identifies critical points in closed form for linear models and wide networks.

Methods, and which parts are exact
----------------------------------
Logistic regression (a recipe-built binary L2 ``LogisticRegression``, see
:func:`governance.influence.supports_influence`). The score after deleting a set S is

    sigmoid( l_model(x') + l*_{D-S}(x') - l*_D(x') )

where ``l_model`` is the deployed model's logit and ``l*_D`` the logit of the *exact optimum* of
the recipe's objective on the rows D (:meth:`LogisticProblem.refit`: the scaler refitted as the
recipe does, then Newton's method to a gradient 10^6 below scikit-learn's default ``tol``). When
the deployed model was solved to optimality this is exactly the refitted model's score (tests
check 1e-6 against ``recipe.fit`` with ``tol=1e-10``). When it was not, a single refit with the
recipe's own ``tol`` moves every score by the solver's stopping error whatever rows were deleted
(up to 0.004 logit with lbfgs at ``tol=1e-4`` on the benchmark population, as large as the effect
of a few deletions among 100,000 rows); that noise is not caused by deletions and is kept out.

- ``"exact"``: at every step and for every recourse, rank all remaining rows by formula (2') of
  :mod:`governance.influence` with |T| = 1 (leverage-corrected influence plus scaler drift)
  *at the current exact refit*, remove the top row and refit exactly. Every score on the path
  comes from an exact refit; the verdicts are exact for the chosen deletion sequence, whose
  choice is guided by the estimate. Recourses that share a deletion prefix share refits.
- ``"approximate"``: one Hessian at the full-data optimum. Each recourse gets a shortlist of the
  ``min(candidates, 4 K)`` rows with the largest single-removal effects; the greedy then adds, at
  each step, the shortlisted row whose *joint* removal with the rows chosen so far lowers the
  logit most by the one-step Newton/Woodbury estimate (2'). No refits, except by this rule: at
  step t, when the estimated logit ``l_t`` lies within ``margin_t = 0.002 + 0.5 |l_t - l_0|`` of
  the threshold's logit, the deletion set of that step is refitted exactly and the exact score
  decides; estimates outside the band decide alone, and the path then holds estimated scores.
  The band covers the error of (2') unless the training set is tiny and weakly regularised:
  against exact refits (``bench/influence_error.py``) it held on every one of 4,000 (set,
  query) pairs with 200 or 400 training rows, and with 60 or 100 rows on every pair with
  C <= 1 but only on 85 % to 98 % of pairs with C = 10 or 100 (C from 0.1 to 100, Gaussian and
  t(2) features); at 20,000 rows the error stayed below 0.4 % of the change. For about a
  hundred training rows or fewer with weak regularisation, use ``method="exact"``. Recourses
  whose estimates stay above the band at every step are screened out as "more than K" without
  any refit. ``tests/governance/deletion/test_fragility.py`` checks that
  the flip verdicts and ``k`` agree on at least 99 % of 100 near-boundary recourses (60 training
  rows, K = 3) with an exhaustive greedy, which refits exactly without every remaining row at
  every step (all 100 agree there), and the flip verdicts with ``"exact"`` at 300 rows.

Other families (tree ensembles, boosting, MLP, ...): the ranking is a documented proxy on a
candidate subset of favourable-labelled training rows, and every score on the path comes from
retraining with the recipe (``recipe.fit`` on the remaining rows), so verdicts are exact for the
chosen sequence in both modes.

- Candidate subset (``candidates`` rows per recourse). For scikit-learn random forests,
  extra-trees and decision trees: the favourable rows sharing a leaf with ``x'``, ranked by the
  fixed-structure leaf-removal effect ``mean_trees (1 - v_leaf) / (n_leaf - 1)`` (the drop of the
  leaf's favourable fraction ``v`` when one favourable row of the ``n_leaf`` training rows in the
  leaf goes; ``v_leaf`` when the row is alone), padded with nearest neighbours. For every other
  family: the nearest favourable rows to ``x'`` in the pipeline's transformed space with each
  column standardised, nearest first. Ties in the leaf ranking are broken by a permutation
  drawn from ``seed``.
- ``"approximate"``: the deletion order is the static proxy ranking; the prefix of length t is
  retrained at step t (prefixes shared by several recourses are retrained once).
- ``"exact"``: at each step, each of the top ``5`` remaining candidates is removed and the model
  retrained; the one giving the lowest retrained score is kept (exact greedy over a shortlist).

Screen (``"screen"``, any family): shared deletion sets, each retrained once, every open
recourse scored under each retrained model in one call; its cost grows with the number of sets
tried, not with the number of recourses. A broken recourse comes with a deletion set whose exact
retrain breaks it; an unbroken one only means that no set among those tried broke it. See
:mod:`governance.deletion.shared_screen`.

``method="auto"`` means ``"approximate"`` for logistic regression and ``"screen"`` for every
other family (the per-recourse searches retrain about K times per recourse there).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from governance.deletion.influence import (
    CHUNK_ELEMENTS,
    Influence,
    LogisticFit,
    LogisticProblem,
    supports_influence,
)
from governance.deletion.retrain import refit_scores
from governance.exceptions import FragilityError
from governance.registry.model import DecisionModel
from governance.registry.training import TrainingRecipe

METHODS = ("auto", "exact", "approximate", "screen")
# Confirmation band of the approximate LR method, in logit units: ABS + REL * |l_t - l_0|.
MARGIN_ABS = 0.002
MARGIN_REL = 0.5
# LR approximate shortlist per recourse: min(candidates, SHORTLIST_PER_STEP * K).
SHORTLIST_PER_STEP = 4
# Non-LR exact: candidates retrained per step and recourse.
EXACT_SHORTLIST = 5
_LOGIT_CLIP = 1e-12


@dataclass(frozen=True)
class FragilityResult:
    """Greedy deletion fragility of each recourse point.

    Attributes
    ----------
    k : ndarray of int, shape (R,)
        Deletions after which the refitted model rejects the point; -1 means more than ``K``
        (or that the candidate rows ran out first); 0 means the current model already rejects
        it.
    removed : list of list of int
        Training row positions (``iloc`` into ``X_train``) removed, in order.
    score_path : list of list of float
        Score at the point after each deletion (exact refit scores, or for the approximate LR
        method the estimate where no refit was needed).
    method : str
        ``"exact"`` or ``"approximate"``.
    K : int
        Deletion budget.
    refits : int
        Number of exact refits performed.
    """

    k: np.ndarray
    removed: list[list[int]]
    score_path: list[list[float]]
    method: str
    K: int
    refits: int = field(default=0)

    @property
    def fragile_share(self) -> float:
        """Share of currently valid recourses (k != 0) flipped by one or two deletions."""
        valid = self.k != 0
        if not valid.any():
            return float("nan")
        return float(np.mean((self.k[valid] >= 1) & (self.k[valid] <= 2)))

    def to_frame(self, ids: pd.Index | np.ndarray | list | None = None) -> pd.DataFrame:
        """One row per recourse point, ready for the store.

        Parameters
        ----------
        ids : array-like of shape (R,), optional
            Recourse identifiers; default 0..R-1.

        Returns
        -------
        DataFrame
            Columns ``recourse_id``, ``k`` (-1 = more than K), ``more_than_K``, ``fragile``
            (1 <= k <= 2), ``n_removed``, ``removed`` and ``score_path`` (JSON lists),
            ``final_score``, ``method``, ``K``.

        Raises
        ------
        FragilityError
            If ``ids`` does not have one entry per recourse point.
        """
        R = len(self.k)
        ids = np.arange(R) if ids is None else np.asarray(ids)
        if len(ids) != R:
            raise FragilityError(f"got {len(ids)} ids for {R} recourse points; expected {R}")
        return pd.DataFrame(
            {
                "recourse_id": ids,
                "k": self.k.astype(int),
                "more_than_K": self.k == -1,
                "fragile": (self.k >= 1) & (self.k <= 2),
                "n_removed": [len(r) for r in self.removed],
                "removed": [json.dumps([int(i) for i in r]) for r in self.removed],
                "score_path": [
                    json.dumps([round(float(s), 6) for s in p]) for p in self.score_path
                ],
                "final_score": [float(p[-1]) if p else np.nan for p in self.score_path],
                "method": self.method,
                "K": self.K,
            }
        )


def fragility(
    model: DecisionModel,
    recipe: TrainingRecipe,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_recourse: pd.DataFrame | np.ndarray,
    *,
    K: int = 5,
    method: str = "auto",
    candidates: int = 200,
    seed: int = 0,
    n_jobs: int = 1,
) -> FragilityResult:
    """Greedy worst-case number of training deletions that invalidates each recourse point.

    See the module docstring for the definition and for which parts are exact.

    Parameters
    ----------
    model : DecisionModel
        The current model; its estimator must be the Pipeline ``recipe`` fitted on
        ``(X_train, y_train)``.
    recipe : TrainingRecipe
        How to retrain without deleted rows.
    X_train : DataFrame of shape (n_train, n_features)
        Training rows (schema columns); positions in the result index its rows.
    y_train : array-like of shape (n_train,)
        Training labels in the estimator's classes.
    X_recourse : DataFrame or ndarray of shape (R, n_features)
        Issued recourse points (frame, or matrix in schema order with category codes).
    K : int, default=5
        Deletion budget.
    method : {"auto", "exact", "approximate", "screen"}, default="auto"
        ``"auto"`` is ``"approximate"`` for logistic regression, ``"screen"`` otherwise.
    candidates : int, default=200
        Candidate subset size per recourse (proxy families); caps the LR shortlist.
    seed : int, default=0
        Seeds the tie-breaking permutation of the proxy ranking (and the screen's grouping).
    n_jobs : int, default=1
        Retrains run at once by the screen (threads); the other methods ignore it.

    Returns
    -------
    FragilityResult

    Raises
    ------
    FragilityError
        On a bad ``K``, ``method`` or ``candidates``, mismatched lengths, missing columns, labels
        outside the estimator's classes, or an estimator that is not a recipe-built Pipeline.

    Examples
    --------
    >>> res = fragility(model, recipe, X_train, y_train, X_recourse, K=3)  # doctest: +SKIP
    >>> res.k, res.fragile_share  # doctest: +SKIP
    """
    positive_int(K, "K")
    if method not in METHODS:
        raise FragilityError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    positive_int(candidates, "candidates")
    y = np.asarray(y_train)
    if y.ndim != 1 or len(y) != len(X_train):
        raise FragilityError(
            f"y_train has shape {y.shape}; expected ({len(X_train)},) to match X_train"
        )
    for name, X in (("X_train", X_train), ("X_recourse", X_recourse)):
        if isinstance(X, pd.DataFrame):
            missing = [c for c in model.schema.names if c not in X.columns]
            if missing:
                raise FragilityError(f"{name} lacks schema columns {missing}")
        elif np.ndim(X) != 2 or np.shape(X)[1] != len(model.schema):
            raise FragilityError(
                f"{name} has shape {np.shape(X)}; expected (n, {len(model.schema)}) in schema order"
            )
    pipe = model.estimator
    if not isinstance(pipe, Pipeline) or list(pipe.named_steps) != ["pre", "model"]:
        raise FragilityError(
            "model.estimator must be a recipe-built Pipeline with steps ['pre', 'model']; "
            f"got {pipe!r}"
        )
    classes = list(pipe.classes_)
    unknown = sorted(map(str, set(np.unique(y).tolist()) - set(classes)))
    if unknown:
        raise FragilityError(f"y_train labels {unknown} not among estimator classes {classes}")
    if len(X_train) < 2:
        raise FragilityError(f"X_train has {len(X_train)} rows; expected at least 2")

    method = resolve_method(pipe, method)
    if method == "screen":
        from governance.deletion.shared_screen import screen  # it builds on this module

        return screen(
            model, recipe, X_train, y, X_recourse, K=int(K), candidates=int(candidates),
            seed=seed, n_jobs=n_jobs,
        )
    frame_train = model.frame(X_train).reset_index(drop=True)
    frame_q = model.frame(X_recourse).reset_index(drop=True)
    base = model.score(frame_q)
    K = int(K)
    if supports_influence(pipe):
        search = _LogisticSearch(model, frame_train, y, frame_q, base)
        run = search.exact if method == "exact" else search.approximate
        return run(K, int(candidates))
    generic = _ProxySearch(model, recipe, frame_train, y, frame_q, base, int(candidates), seed)
    return generic.exact(K) if method == "exact" else generic.approximate(K)


def positive_int(value: object, name: str) -> int:
    """``value`` as an int, or a FragilityError naming ``name`` when it is not a positive
    integer (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise FragilityError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def resolve_method(estimator: object, method: str) -> str:
    """The method ``"auto"`` stands for with this estimator; other methods unchanged.

    ``"approximate"`` where influence estimates apply (recipe-built L2 logistic regression),
    ``"screen"`` for every other family.
    """
    if method not in METHODS:
        raise FragilityError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if method != "auto":
        return method
    return "approximate" if supports_influence(estimator) else "screen"


# -- helpers -----------------------------------------------------------------------------------
def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, _LOGIT_CLIP, 1.0 - _LOGIT_CLIP)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _Book:
    """Per-recourse bookkeeping shared by every search."""

    def __init__(self, base: np.ndarray, threshold: float) -> None:
        R = len(base)
        self.k = np.full(R, -1, dtype=np.int64)
        self.k[base < threshold] = 0
        self.removed: list[list[int]] = [[] for _ in range(R)]
        self.path: list[list[float]] = [[] for _ in range(R)]
        self.refits = 0

    def active(self) -> np.ndarray:
        return np.flatnonzero(self.k == -1)

    def result(self, method: str, K: int) -> FragilityResult:
        return FragilityResult(self.k, self.removed, self.path, method, K, self.refits)


class _LogisticSearch:
    """Influence-ranked greedy search for recipe-built logistic regression.

    Scores are ``sigmoid(l_model(x') + l*_{D-S}(x') - l*_D(x'))``: the deployed logit moved by
    the exact change of the regularised optimum ``l*`` when the rows S go (see the module
    docstring). ``self.offset`` holds ``l_model - l*_D`` per recourse point.
    """

    def __init__(
        self,
        model: DecisionModel,
        frame_train: pd.DataFrame,
        y: np.ndarray,
        frame_q: pd.DataFrame,
        base: np.ndarray,
    ) -> None:
        self.problem = LogisticProblem(model.estimator, frame_train, y, model.favourable_class)
        self.q_num, self.q_cat = self.problem.blocks(frame_q)
        self.threshold = float(model.threshold)
        self.tau = float(_logit(self.threshold))
        self.base = base
        self.n = len(frame_train)
        deployed = self.problem.root()
        self.optimum = self.problem.refit(np.arange(self.n), deployed)
        self.offset = self._logits(deployed, np.arange(len(base))) - self._logits(
            self.optimum, np.arange(len(base))
        )

    def _rows(self, key: frozenset[int]) -> np.ndarray:
        keep = np.ones(self.n, dtype=bool)
        keep[list(key)] = False
        return np.flatnonzero(keep)

    def _logits(self, fit: LogisticFit, js: np.ndarray) -> np.ndarray:
        Q = self.problem.design(fit, self.q_num[js], self.q_cat[js])
        return self.problem.logit(fit, Q)

    def _moved(self, fit: LogisticFit, js: np.ndarray) -> np.ndarray:
        """Deployed logit moved by the change of the optimum, at recourse points ``js``."""
        return self._logits(fit, js) + self.offset[js]

    def exact(self, K: int, candidates: int) -> FragilityResult:
        """Influence ranking at each exact refit; every path score comes from an exact refit."""
        book = _Book(self.base, self.threshold)
        parents: dict[frozenset[int], LogisticFit] = {frozenset(): self.optimum}
        for _ in range(K):
            active = book.active()
            if active.size == 0:
                break
            groups: dict[frozenset[int], list[int]] = defaultdict(list)
            for j in active:
                groups[frozenset(book.removed[j])].append(int(j))
            children: dict[frozenset[int], list[int]] = defaultdict(list)
            child_parent: dict[frozenset[int], frozenset[int]] = {}
            for key, js in groups.items():
                fit, rows = parents[key], self._rows(key)
                infl = self.problem.influence(fit, rows)
                Q = self.problem.design(fit, self.q_num[js], self.q_cat[js])
                local, _ = infl.top_removals(Q, 1)
                for j, li in zip(js, local[:, 0], strict=True):
                    pos = int(rows[li])
                    book.removed[j].append(pos)
                    child = key | {pos}
                    children[child].append(j)
                    child_parent.setdefault(child, key)
            fits: dict[frozenset[int], LogisticFit] = {}
            for child, js in children.items():
                fits[child] = self.problem.refit(self._rows(child), parents[child_parent[child]])
                book.refits += 1
                logits = self._moved(fits[child], np.asarray(js))
                for j, lg in zip(js, logits, strict=True):
                    book.path[j].append(float(_sigmoid(lg)))
                    if lg < self.tau:
                        book.k[j] = len(book.removed[j])
            parents = fits
        return book.result("exact", K)

    def approximate(self, K: int, candidates: int) -> FragilityResult:
        """Group one-step-Newton greedy from one Hessian; refits only inside the margin band."""
        book = _Book(self.base, self.threshold)
        active = book.active()
        if active.size == 0:
            return book.result("approximate", K)
        infl = self.problem.influence(self.optimum, np.arange(self.n))
        Q = self.problem.design(self.optimum, self.q_num[active], self.q_cat[active])
        M = max(1, min(candidates, SHORTLIST_PER_STEP * K, self.n))
        local, _ = infl.top_removals(Q, M)
        M = local.shape[1]
        steps = min(K, M)
        chosen = np.empty((len(active), steps), dtype=np.int64)
        delta = np.empty((len(active), steps))
        # Greedy over each recourse's shortlist, in blocks of recourses to bound memory: per
        # recourse, set_effects holds M systems of size steps + s (s scaled columns).
        d = steps + infl.scaled.size
        block = max(1, CHUNK_ELEMENTS // (M * (M + d * d + 4 * d)))
        for s in range(0, len(active), block):
            sl = slice(s, s + block)
            terms = infl.shortlist_terms(Q[sl], local[sl])
            chosen[sl], delta[sl] = _greedy_group(infl, terms, steps)
        positions = infl.rows[np.take_along_axis(local, chosen, axis=1)]
        est = (self._logits(self.optimum, active) + self.offset[active])[:, None] + delta
        band = MARGIN_ABS + MARGIN_REL * np.abs(delta)
        open_ = np.ones(len(active), dtype=bool)
        for t in range(steps):
            undecided = np.flatnonzero(open_)
            if undecided.size == 0:
                break
            # The documented rule: refit exactly only where the estimate is inside the band.
            confirm = undecided[np.abs(est[undecided, t] - self.tau) <= band[undecided, t]]
            logit_t = est[:, t].copy()
            by_set: dict[frozenset[int], list[int]] = defaultdict(list)
            for i in confirm:
                by_set[frozenset(positions[i, : t + 1].tolist())].append(int(i))
            for key, idx in by_set.items():
                fit = self.problem.refit(self._rows(key), self.optimum)
                book.refits += 1
                logit_t[idx] = self._moved(fit, active[np.asarray(idx)])
            for i in undecided:
                j = active[i]
                book.removed[j].append(int(positions[i, t]))
                book.path[j].append(float(_sigmoid(logit_t[i])))
                if logit_t[i] < self.tau:
                    book.k[j] = t + 1
                    open_[i] = False
        return book.result("approximate", K)


def _greedy_group(
    infl: Influence, terms: dict[str, np.ndarray], steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy set growth on formula (2') over each recourse's shortlist.

    Returns the chosen shortlist positions (B, steps) and the estimated logit change after each
    step (B, steps).
    """
    B, M = terms["a"].shape
    chosen = np.empty((B, steps), dtype=np.int64)
    delta = np.empty((B, steps))
    cand = np.arange(M)
    taken = np.zeros((B, M), dtype=bool)
    for t in range(steps):
        sets = np.concatenate(
            [
                np.broadcast_to(chosen[:, None, :t], (B, M, t)),
                np.broadcast_to(cand[None, :, None], (B, M, 1)),
            ],
            axis=2,
        )  # (B, M, t + 1): the set if candidate m is added
        d = infl.set_effects(terms, sets)
        d[taken] = np.inf
        best = np.argmin(d, axis=1)
        chosen[:, t] = best
        delta[:, t] = d[np.arange(B), best]
        taken[np.arange(B), best] = True
    return chosen, delta


class _ProxySearch:
    """Proxy-ranked greedy search confirmed by recipe retraining (any model family)."""

    def __init__(
        self,
        model: DecisionModel,
        recipe: TrainingRecipe,
        frame_train: pd.DataFrame,
        y: np.ndarray,
        frame_q: pd.DataFrame,
        base: np.ndarray,
        candidates: int,
        seed: int,
    ) -> None:
        self.model, self.recipe = model, recipe
        self.frame_train, self.y, self.frame_q = frame_train, y, frame_q
        self.threshold = float(model.threshold)
        self.base = base
        self.book = _Book(base, self.threshold)
        active = self.book.active()
        self.order = np.full((len(base), 0), -1, dtype=np.int64)
        if active.size:
            ranked = proxy_order(model, frame_train, y, frame_q.iloc[active], candidates, seed)
            self.order = np.full((len(base), ranked.shape[1]), -1, dtype=np.int64)
            self.order[active] = ranked

    def _refit_scores(self, key: frozenset[int], js: list[int]) -> np.ndarray:
        self.book.refits += 1
        return refit_scores(
            self.model, self.recipe, self.frame_train, self.y, key, self.frame_q.iloc[js]
        )

    def _step(self, choose: Callable[[int], list[int]]) -> bool:
        """Retrain every (recourse, candidate) child once; keep each recourse's lowest score."""
        active = self.book.active()
        wanted: dict[frozenset[int], list[int]] = defaultdict(list)
        options: dict[int, list[int]] = {}
        for j in active:
            options[int(j)] = choose(int(j))
            for c in options[int(j)]:
                wanted[frozenset(self.book.removed[j]) | {c}].append(int(j))
        if not wanted:
            return False
        score: dict[tuple[int, frozenset[int]], float] = {}
        for key, js in wanted.items():
            for j, s in zip(js, self._refit_scores(key, js), strict=True):
                score[(j, key)] = float(s)
        for j, opts in options.items():
            if not opts:
                continue
            prefix = frozenset(self.book.removed[j])
            best = min(opts, key=lambda c, j=j, p=prefix: (score[(j, p | {c})], opts.index(c)))
            self.book.removed[j].append(best)
            s = score[(j, prefix | {best})]
            self.book.path[j].append(s)
            if s < self.threshold:
                self.book.k[j] = len(self.book.removed[j])
        return True

    def _remaining(self, j: int) -> list[int]:
        done = set(self.book.removed[j])
        return [int(c) for c in self.order[j] if c >= 0 and c not in done]

    def approximate(self, K: int) -> FragilityResult:
        """Static proxy order; the prefix of length t is retrained at step t."""
        for _ in range(K):
            if not self._step(lambda j: self._remaining(j)[:1]):
                break
        return self.book.result("approximate", K)

    def exact(self, K: int) -> FragilityResult:
        """Retrain each of the top remaining candidates per step; keep the lowest score."""
        for _ in range(K):
            if not self._step(lambda j: self._remaining(j)[:EXACT_SHORTLIST]):
                break
        return self.book.result("exact", K)


def proxy_order(
    model: DecisionModel,
    frame_train: pd.DataFrame,
    y: np.ndarray,
    frame_q: pd.DataFrame,
    candidates: int,
    seed: int,
) -> np.ndarray:
    """Candidate rows per recourse, best first (positions; -1 pads), shape (R, <= candidates)."""
    pipe = model.estimator
    pre, est = pipe.named_steps["pre"], pipe.named_steps["model"]
    fav_rows = np.flatnonzero(y == model.favourable_class)
    R = len(frame_q)
    if fav_rows.size == 0:
        return np.full((R, 0), -1, dtype=np.int64)
    Zt = np.asarray(pre.transform(frame_train), dtype=float)
    Zq = np.asarray(pre.transform(frame_q), dtype=float)
    rng = np.random.default_rng(seed)
    tiebreak = rng.permutation(len(frame_train))
    m = min(candidates, fav_rows.size)
    near = _nearest_favourable(Zt, Zq, fav_rows, m)
    if not isinstance(est, RandomForestClassifier | ExtraTreesClassifier | DecisionTreeClassifier):
        return near
    fav_index = list(est.classes_).index(model.favourable_class)
    leafy = _leaf_order(est, Zt, Zq, fav_rows, fav_index, m, tiebreak)
    out = np.full((R, m), -1, dtype=np.int64)
    for j in range(R):  # merge: leaf-effect ranking first, then nearest neighbours
        seen: dict[int, None] = dict.fromkeys(int(c) for c in leafy[j] if c >= 0)
        for c in near[j]:
            if len(seen) >= m:
                break
            seen.setdefault(int(c), None)
        row = list(seen)[:m]
        out[j, : len(row)] = row
    return out


def _nearest_favourable(Zt: np.ndarray, Zq: np.ndarray, fav_rows: np.ndarray, m: int) -> np.ndarray:
    """The m nearest favourable-labelled training rows, in column-standardised space."""
    sd = Zt.std(axis=0)
    sd[sd == 0] = 1.0
    mu = Zt.mean(axis=0)
    nn = NearestNeighbors(n_neighbors=m).fit((Zt[fav_rows] - mu) / sd)
    idx = nn.kneighbors((Zq - mu) / sd, return_distance=False)
    return fav_rows[idx]


def _leaf_order(
    est: object,
    Zt: np.ndarray,
    Zq: np.ndarray,
    fav_rows: np.ndarray,
    fav_index: int,
    m: int,
    tiebreak: np.ndarray,
) -> np.ndarray:
    """Favourable rows ranked by the fixed-structure leaf-removal effect on the forest's score."""
    from scipy import sparse

    trees = list(getattr(est, "estimators_", [est]))
    leaves_t = np.asarray(est.apply(Zt)).reshape(len(Zt), -1)
    leaves_f = leaves_t[fav_rows]
    leaves_q = np.asarray(est.apply(Zq)).reshape(len(Zq), -1)
    T = len(trees)
    offsets, drops = [], []
    total = 0
    for b, tree in enumerate(trees):
        value = tree.tree_.value[:, 0, :]
        v = value[:, fav_index] / np.maximum(value.sum(axis=1), 1e-300)
        counts = np.bincount(leaves_t[:, b], minlength=len(v)).astype(float)
        drop = np.where(counts > 1, (1.0 - v) / np.maximum(counts - 1.0, 1.0), v)
        offsets.append(total)
        drops.append(drop / T)
        total += len(v)
    off = np.asarray(offsets)
    drop_all = np.concatenate(drops)
    gf = (leaves_f + off).ravel()
    A_f = sparse.csr_matrix(
        (np.ones(gf.size), (np.repeat(np.arange(len(fav_rows)), T), gf)),
        shape=(len(fav_rows), total),
    )
    R = len(Zq)
    out = np.full((R, m), -1, dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // max(1, len(fav_rows)))
    for s in range(0, R, step):
        gq = (leaves_q[s : s + step] + off).ravel()
        b = len(leaves_q[s : s + step])
        A_q = sparse.csr_matrix((drop_all[gq], (np.repeat(np.arange(b), T), gq)), shape=(b, total))
        E = (A_q @ A_f.T).tocsr()
        E.eliminate_zeros()
        rows = np.repeat(np.arange(b), np.diff(E.indptr))
        cols = fav_rows[E.indices]
        order = np.lexsort((tiebreak[cols], -E.data, rows))
        rank = np.arange(order.size) - E.indptr[rows[order]]
        keep = rank < m
        out[s + rows[order][keep], rank[keep]] = cols[order][keep]
    return out
