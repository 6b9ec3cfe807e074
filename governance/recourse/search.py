"""Recourse verification and minimal-cost recourse for denied applicants, in one search.

For every denied person (``model.score(x) < model.threshold``) the search decides:

- ``"recourse"``: a feasible action flips the decision; the cheapest one found is issued
  (action per feature, cost, score after, model and action-set versions);
- ``"fixed"``: the search covered the whole reachable set ``A(x)`` (or a set proven to contain
  a representative of every prediction it can reach) and nothing flips;
- ``"undetermined"``: the search was cut short (the ``max_points`` budget per person) or it
  could not cover ``A(x)``. "fixed" is never reported without a complete search.

Rows already approved get ``"approved"``.

Acceptance. ``find_recourse(..., accept=f)`` narrows what counts as a success: a candidate is
issued only if it flips the decision **and** ``f(points, scores)`` is True for it (``f`` sees
flipping candidates only, in the schema's code-matrix layout, with their P(favourable)). The
cost-ordered search then issues the cheapest *accepted* candidate (say, the cheapest flip whose
stability score clears a bar). "fixed" stays about flipping alone: a person with no flipping
action is fixed whatever ``f`` says. A person for whom some candidate flipped but ``f``
rejected every flipping candidate evaluated gets ``"unaccepted"`` (recourse exists, none
acceptable was found), with ``complete=True`` when the whole candidate space was searched, so
no candidate of it is acceptable. Without ``accept`` that status never occurs.

How it searches. Each part of the action set contributes a list of candidate joint actions
with their costs (costs are additive over features, see :mod:`governance.costs`), sorted
cheapest first, the null action first. Candidates are combined across parts in
non-decreasing total cost: the top ``M`` combinations of the lists are computed exactly by
merging one part at a time and keeping the ``M`` cheapest (a combination's prefix is among
the ``M`` cheapest prefixes, and only index pairs with ``(i + 1)(j + 1) <= M`` can qualify),
with a fixed tie order, so the top ``M`` of a larger budget extends that of a smaller one.
Budgets grow fourfold (8, 32, 128, 512, ... up to ``max_points``): a person whose first flip
has rank ``r`` costs fewer than ``4r`` model rows, in few rounds (model calls have a fixed
cost too, large for forests); each round evaluates the new candidates of every unresolved
person of the chunk in a few large ``model.score`` calls. The first flipping
candidate in cost order is the exact minimum over the candidate space: every cheaper candidate
was evaluated and failed.

Candidate spaces. Discrete features are enumerated exactly. Float features are represented by
a grid (multiples of the feature's ``step_size`` in the reachable interval, both interval ends
and the current value), so for them **the minimum is over that grid**, and a search over the
grid proves nothing about the continuum by itself. "fixed" is certified only where the
candidate space provably covers every prediction ``A(x)`` can reach:

- every actionable part discrete: the candidate space is ``A(x)``;
- tree ensembles (scikit-learn decision trees, random forests, extra trees, gradient boosting,
  histogram gradient boosting), alone or after a ``ColumnTransformer`` of passthrough,
  ``StandardScaler`` and ``OneHotEncoder`` as built by :class:`~governance.training.
  TrainingRecipe`: the prediction is constant between consecutive split thresholds of a
  feature, so for single-feature parts the candidates are one representative per threshold
  cell (the grid value closest to ``x`` inside the cell, or the cell's edge when no grid value
  falls inside; placement is checked with the model's own arithmetic, float32 included), which
  is a complete search for those features and gives the exact minimum over that set. Each
  person's lists are then narrowed to the splits that points of ``A(x)`` can actually meet: a
  box containing ``A(x)`` is walked through every tree, and of the candidates of a part that
  fall in the same cells of the thresholds used at reachable split nodes only the cheapest is
  kept (the others give the same score in every combination, at a higher cost), so the minimum
  and the coverage are unchanged while the lists shrink several-fold;
- logistic regression in the same pipelines: the score is monotone in each feature and
  additive over parts, so the point that takes, in every part, the candidate with the largest
  logit gain is the best point of ``A(x)`` (float grids contain both interval ends); if it
  does not flip, the person is fixed; if it does, the cost-ordered search runs and, should the
  budget end first, that best point is one of the greedy fallback's starts below.

Float features inside multi-feature parts, and other models, are searched on their grids and
end "undetermined" when nothing flips. Tree ensembles also get a sound upper bound on the
score over a box containing ``A(x)``: below the threshold, the person is fixed without any
search; people nothing flipped for after the search get the bound refined by a small branch
and bound. The parsed trees are trusted only where they reproduce the model's scores.

What "minimal" means. A recourse with ``complete=True`` is the cheapest point of the candidate
grid. That is the cheapest point of ``A(x)`` only when no float feature can move
(:attr:`RecourseResult.minimal_over` is ``"action_set"``); with a float feature the grid's
minimum can lie above the continuous one (``"candidate_grid"``: a flip between two grid
values, or nearer a tree threshold than the cell's grid value, may cost less).

Proof. A budget must not turn a provable verdict into a guess: people for whom nothing flipped
within ``max_points`` and whose whole candidate space is exact and holds at most
``prove_points`` (:data:`PROVE_POINTS`) points are searched to the end, in the same cost
order, before any greedy step, so they end "fixed" or with a proven minimal recourse. On
German credit, where every actionable feature is discrete, this is what makes the verdicts
match reachml's enumeration.

Greedy fallback. When the budget ends without a flip (and the proof does not apply), a greedy
ascent (one part at a time, the move that raises the score most, batched across people) looks
for any flipping action from several starts: the person's own point, the highest-scoring point
the exact search had met at each rung of the budget (8, 32, 128, ...), and for logistic
regression the best point of ``A(x)``. Each success is made cheaper part by part, and the
cheapest is issued as "recourse" with ``complete=False``: valid and inside the action set, but
not proven to be the cheapest. A larger budget passes the same rungs, so it has every start a
smaller one has, and the proof condition only widens with the budget: a larger budget never
issues less, never a costlier recourse, and never loses a proven verdict (a property test
holds it).

Budget. ``max_points`` bounds the exact search per person. The default (:data:`MAX_POINTS`,
512) is sized for nightly runs; ``bench/recourse_budget.py`` measures it (bench/README.md). On
the demo lender (the demo recipe, the synthetic lending action set, 1,000 denied people) it
evaluates about 1,000 model rows per person; 89% get a recourse, 47% of which with a proven
minimum (on the grid: the lender's action set has float features), 9% end "fixed" and 2%
"undetermined"; it reaches 82% of the minima an 8,192-point search proves. Larger budgets prove
more minima slowly (56% of issued recourse at 2,048 points, 63% at 8,192) at 3.2x and 7.3x the
time of the search before its greedy fallback changed. No budget gives 99% proven minima on
German credit, HELOC, Give Me Some Credit and the demo lender within 1.5x that time, so the
default stayed.

The search reads best whole (about 850 lines): its rounds, the bound, the proof stage and the
greedy fallback share one state per chunk of people and are documented above as one algorithm.
"""


from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance.arrays import unique_rows
from governance.exceptions import RecourseError
from governance.recourse.action_set import ActionSet
from governance.recourse.candidates import Candidates, build_candidates, top_combinations
from governance.recourse.costs import Cost
from governance.recourse.reachable import (
    CompiledActionSet,
    check_actionable_finite,
    compile_action_set,
    model_matrix,
    value_box,
)
from governance.registry.model import DecisionModel
from governance.registry.trees import CellKeys, ModelStructure, TreeBound, model_structure

STATUSES = ("approved", "recourse", "fixed", "undetermined", "unaccepted")


MAX_POINTS = 512  # default exact-search budget per person (see "Budget" above)


PROVE_POINTS = 20_000  # enumerated to the end when nothing flipped (see "Proof" above)


_FIRST_BUDGET = 8


_GROWTH = 4


_MERGE_CELLS = 4_000_000  # floats held by one merge step of one group of people


_GREEDY_PER_PART = 64  # candidates per part the greedy fallback tries per move


@dataclass(frozen=True)
class RecourseResult:
    """Recourse verdicts and issued actions for a chunk of people.

    Attributes
    ----------
    feature_names : tuple of str
        Model schema order.
    status : ndarray of str, shape (n_rows,)
        ``"approved"``, ``"recourse"``, ``"fixed"``, ``"undetermined"`` or (only with an
        ``accept`` rule) ``"unaccepted"``.
    complete : ndarray of bool, shape (n_rows,)
        True when the verdict is proven: "fixed" after a complete search, "recourse" whose
        action is the minimum over the candidate grid, or "unaccepted" after the whole
        candidate grid was searched. "approved" rows are True.
    grid_exact : ndarray of bool, shape (n_rows,)
        True when the row's candidate grid holds every point of ``A(x)``: no float feature
        can move, so a minimum on the grid is the minimum over the action set. False when a
        float feature was searched on its grid (a cheaper point between grid values may
        exist). See :attr:`minimal_over`.
    n_points : ndarray of int, shape (n_rows,)
        Candidate points the model evaluated for the row.
    score : ndarray of float, shape (n_rows,)
        Score of the row as it is.
    action : ndarray of shape (n_rows, n_features)
        Change per feature of the issued recourse (0 for untouched features); NaN where no
        recourse is issued.
    cost : ndarray of float, shape (n_rows,)
        Cost of the issued action; NaN where none.
    score_after : ndarray of float, shape (n_rows,)
        Score after the action; NaN where none.
    x_after : ndarray of shape (n_rows, n_features)
        The point after the action; NaN where none.
    model_version, action_set_version, action_set_sha256, cost_kind, cost_sha256 : str
        Provenance of the issued recourse.
    """

    feature_names: tuple[str, ...]
    status: np.ndarray
    complete: np.ndarray
    n_points: np.ndarray
    score: np.ndarray
    action: np.ndarray
    cost: np.ndarray
    score_after: np.ndarray
    x_after: np.ndarray
    grid_exact: np.ndarray | None = None
    model_version: str = ""
    action_set_version: str = ""
    action_set_sha256: str = ""
    cost_kind: str = ""
    cost_sha256: str = ""

    @property
    def minimal_over(self) -> np.ndarray:
        """What the cost of each issued recourse is proven minimal over.

        ``"action_set"``: every point of ``A(x)`` (the grid is the action set);
        ``"candidate_grid"``: the candidate grid only (float features searched in steps of
        their ``step_size`` or at tree-cell representatives); ``None``: not proven minimal
        (a valid recourse from the greedy fallback), or no recourse issued.
        """
        grid_exact = (np.zeros(len(self.status), dtype=bool) if self.grid_exact is None
                      else self.grid_exact)
        proven = (self.status == "recourse") & self.complete
        out = np.full(len(self.status), None, dtype=object)
        out[proven & grid_exact] = "action_set"
        out[proven & ~grid_exact] = "candidate_grid"
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per person: verdict, cost, scores and ``action:<feature>`` columns."""
        df = pd.DataFrame(
            {
                "row": np.arange(len(self.status)),
                "status": self.status,
                "complete": self.complete,
                "minimal_over": self.minimal_over,
                "n_points": self.n_points,
                "score": self.score,
                "cost": self.cost,
                "score_after": self.score_after,
            }
        )
        actions = pd.DataFrame(
            self.action, columns=[f"action:{n}" for n in self.feature_names]
        )
        df = pd.concat([df, actions], axis=1)
        df["model_version"] = self.model_version
        df["action_set_version"] = self.action_set_version
        df["action_set_sha256"] = self.action_set_sha256
        df["cost_kind"] = self.cost_kind
        return df

    def actions_frame(self) -> pd.DataFrame:
        """The changed features of every issued recourse: ``row``, ``feature``, ``value``,
        ``value_after``, ``delta``."""
        rows, cols = np.nonzero(np.nan_to_num(self.action) != 0)
        x_before = self.x_after - self.action
        return pd.DataFrame(
            {
                "row": rows,
                "feature": np.asarray(self.feature_names, dtype=object)[cols],
                "value": x_before[rows, cols],
                "value_after": self.x_after[rows, cols],
                "delta": self.action[rows, cols],
            }
        )


def find_recourse(
    model: DecisionModel,
    action_set: ActionSet,
    X: np.ndarray,
    cost: Cost,
    *,
    max_points: int = MAX_POINTS,
    prove_points: int = PROVE_POINTS,
    batch_rows: int = 250_000,
    accept: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> RecourseResult:
    """Verify recourse and find the minimal-cost action for every denied row of ``X``.

    Parameters
    ----------
    model : DecisionModel
        The issuing model; approval is ``model.score(x) >= model.threshold``.
    action_set : ActionSet
        Matched to ``model.schema`` by name; features it lacks are immutable.
    X : ndarray of shape (n_rows, n_features) or DataFrame
        Rows in schema order, categories as integer codes.
    cost : Cost
        Fitted on the model's features (:mod:`governance.costs`).
    max_points : int, default=MAX_POINTS (512)
        Candidate points of the exact cost-ordered search per person. Past it, a greedy
        ascent may still find a (not proven cheapest) recourse; otherwise the verdict is
        "undetermined". Raise it to prove more minima at proportionally more model rows.
    prove_points : int, default=PROVE_POINTS (20,000)
        People nothing flipped for within ``max_points`` are searched to the end when their
        whole candidate space is exact and at most this large, so a small budget does not
        leave a provably fixed person "undetermined". 0 turns it off.
    batch_rows : int, default=250_000
        Rows per ``model.score`` call.
    accept : callable, optional
        ``accept(points, scores) -> bool array``: called on flipping candidates only
        (``points`` in schema order with category codes, ``scores`` their P(favourable));
        a candidate is a success only where it returns True, so the issued action is the
        cheapest accepted one. "fixed" verdicts do not depend on it; people with flips but
        none accepted get ``"unaccepted"`` (see the module docstring).

    Returns
    -------
    RecourseResult
        Every issued action flips the issuing model and lies in the action set.

    Raises
    ------
    ActionSetError
        If the action set does not fit the schema or an actionable value is missing.
    CostError
        If ``cost`` was fitted on other features.
    RecourseError
        If ``accept`` does not return one boolean per candidate.
    """
    cas = compile_action_set(action_set, model.schema)
    cost.check_names(model.schema.names)
    M = model_matrix(model, X)
    n, d = M.shape
    search = _Search(
        model, cas, cost, max(int(max_points), 1), max(int(batch_rows), 1), accept,
        prove_points=max(int(prove_points), 0),
    )
    if n == 0:
        return search.result(np.zeros((0, d)), np.zeros(0, dtype=np.int64))
    check_actionable_finite(cas, M)
    U, inv = unique_rows(M)
    search.run(U)
    return search.result(U, inv)


def _is_rung(budget: int) -> bool:
    """Whether ``budget`` is one of the budgets every larger search also stops at (8, 32, ...)."""
    b = _FIRST_BUDGET
    while b < budget:
        b *= _GROWTH
    return b == budget


# ------------------------------------------------------------------------------------------
# the search
# ------------------------------------------------------------------------------------------
class _Search:
    def __init__(
        self,
        model: DecisionModel,
        cas: CompiledActionSet,
        cost: Cost,
        max_points: int,
        batch_rows: int,
        accept: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        prove_points: int = 0,
    ) -> None:
        self.model, self.cas, self.cost = model, cas, cost
        self.max_points, self.batch_rows = max_points, batch_rows
        self.accept = accept
        self.prove_points = prove_points

    # -- scoring ------------------------------------------------------------------------------
    def _score(self, P: np.ndarray) -> np.ndarray:
        if len(P) == 0:
            return np.zeros(0)
        step = self.batch_rows
        return np.concatenate([self.model.score(P[i : i + step]) for i in range(0, len(P), step)])

    def _success(self, P: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate: does it flip, and does it flip and pass ``accept``."""
        flip = scores >= self.model.threshold
        if self.accept is None:
            return flip, flip
        ok = flip.copy()
        idx = np.flatnonzero(flip)
        if idx.size:
            got = np.asarray(self.accept(P[idx], scores[idx]))
            if got.shape != (idx.size,) or got.dtype != bool:
                raise RecourseError(
                    f"accept must return {idx.size} booleans, one per candidate; got an "
                    f"array of shape {got.shape} and dtype {got.dtype}"
                )
            ok[idx] = got
        return flip, ok

    # -- main loop ----------------------------------------------------------------------------
    def run(self, U: np.ndarray) -> None:
        nu, d = U.shape
        self.U = U
        self.score = self._score(U)
        self.status = np.where(self.score >= self.model.threshold, "approved", "undetermined")
        self.status = self.status.astype(object)
        self.complete = self.status == "approved"
        self.n_points = np.zeros(nu, dtype=np.int64)
        self.x_after = np.full((nu, d), np.nan)
        self.cost_after = np.full(nu, np.nan)
        self.score_after = np.full(nu, np.nan)
        self.seen_flip = np.zeros(nu, dtype=bool)  # some candidate flipped (accepted or not)
        denied = np.flatnonzero(self.status != "approved")
        if denied.size == 0:
            return
        if not self.cas.parts:  # nothing can change: A(x) = {x}
            self.status[denied] = "fixed"
            self.complete[denied] = True
            return
        structure = model_structure(self.model)
        if structure.kind == "linear" and not self._linear_matches(structure, denied):
            structure = ModelStructure()
        cands = [
            build_candidates(self.cas, self.cost, structure, part, U[denied])
            for part in self.cas.parts
        ]
        bound = structure.bound  # trusted only if it reproduces the model's scores
        if bound is not None and not bound.matches(U[denied], self.score[denied]):
            bound = None
        if bound is not None:
            cands = self._narrow(bound, cands, denied)
        self.best_score = self.score[denied].copy()  # the highest-scoring point met so far
        self.best_pt = U[denied].copy()
        self.best_rows = np.stack([c.offsets[c.sub] for c in cands], axis=1)  # null = first
        exact = np.ones(len(denied), dtype=bool)
        total = np.ones(len(denied))
        for c in cands:
            exact &= c.exact[c.sub]
            total *= c.lengths(np.arange(len(denied)))
        fallback = None
        active = np.ones(len(denied), dtype=bool)
        if bound is not None:  # one box per person, where the search cannot settle it alone
            hard = ~exact | (total > self.max_points)
            if hard.any():
                self._bound_check(bound, denied, active, hard, branch=False)
        uncertain = np.zeros(len(denied), dtype=bool)  # searched through, nothing flipped
        if structure.kind == "linear" and np.any(exact):
            fallback = self._linear_check(cands, denied, exact, active)
        prev = 1  # rank 0 is the null action: the person as is, already denied
        starts = []  # the best point met after each rung of the budget (greedy start points)
        for budget in self._budgets():
            if not active.any():
                break
            self._round(cands, denied, np.flatnonzero(active), prev, budget, active)
            done = active & (total <= budget)
            flipped = self.seen_flip[denied[done]]
            self.status[denied[done]] = np.where(
                flipped, "unaccepted", np.where(exact[done], "fixed", "undetermined")
            )
            self.complete[denied[done]] = exact[done] | flipped
            uncertain |= done & ~exact & ~self.seen_flip[denied]
            active &= ~done
            prev = budget
            if _is_rung(budget):
                starts.append(self.best_rows.copy())
        if self.prove_points > prev:
            self._prove(cands, denied, active, exact, total, prev)
        if active.any():
            self._greedy(cands, denied, np.flatnonzero(active), active, starts, fallback)
        if bound is not None:  # branch and bound, only for people nothing flipped for
            hard = (active | uncertain) & ~self.seen_flip[denied]
            if hard.any():
                self._bound_check(bound, denied, active, hard, branch=True)
        left = denied[active & self.seen_flip[denied]]
        self.status[left] = "unaccepted"  # budget spent: flips seen, none accepted

    def _prove(self, cands: list[Candidates], denied: np.ndarray, active: np.ndarray,
               exact: np.ndarray, total: np.ndarray, prev: int) -> None:
        """Search on, in cost order, where nothing flipped and the space is exact and small."""
        prove = active & exact & ~self.seen_flip[denied] & (total <= self.prove_points)
        budget = prev
        while prove.any():
            lo, budget = budget, min(budget * _GROWTH, self.prove_points)
            self._round(cands, denied, np.flatnonzero(prove), lo, budget, active)
            prove &= active & ~self.seen_flip[denied]  # a flip: recourse, or none accepted
            done = prove & (total <= budget)
            self.status[denied[done]] = "fixed"
            self.complete[denied[done]] = True
            active &= ~done
            prove &= ~done

    def _budgets(self) -> Iterator[int]:
        b = _FIRST_BUDGET
        while b < self.max_points:
            yield b
            b *= _GROWTH
        yield self.max_points


    def _linear_matches(self, structure: ModelStructure, rows: np.ndarray) -> bool:
        """Check the reconstructed logit against the model's own scores before trusting it."""
        p = self.score[rows]
        ok = (p > 1e-9) & (p < 1 - 1e-9)
        if not ok.any():
            return False
        z = np.log(p[ok]) - np.log1p(-p[ok])
        mine = structure.logit(self.U[rows[ok]])
        return bool(np.allclose(mine, z, rtol=1e-6, atol=1e-6))

    def _narrow(
        self, bound: TreeBound, cands: list[Candidates], denied: np.ndarray
    ) -> list[Candidates]:
        """Tree ensembles: per person and part, keep the cheapest candidate of each threshold
        cell among the splits that the search's points can meet (see :class:`CellKeys`).

        The box is, per person, the hull of every candidate of every part, so it holds every
        combination the search can form (parts share no column). A dropped candidate gives,
        combined with anything the other parts do, the same score as a kept one that costs no
        more, so the minimum over the candidate space and its coverage of ``A(x)``'s
        predictions are unchanged; only the lists get shorter.
        """
        X = self.U[denied]
        n = len(denied)
        lo, hi = X.copy(), X.copy()
        values = []
        for c in cands:
            lens = c.lengths(np.arange(n))
            owner = np.repeat(np.arange(n), lens)
            start = np.repeat(c.offsets[c.sub] - (np.cumsum(lens) - lens), lens)
            rows = start + np.arange(int(lens.sum()))
            V = X[:, c.part.idx][owner] + c.C[rows]
            first_row = np.cumsum(lens) - lens  # every list holds the null action at least
            lo[:, c.part.idx] = np.minimum.reduceat(V, first_row, axis=0)
            hi[:, c.part.idx] = np.maximum.reduceat(V, first_row, axis=0)
            values.append((owner, rows, V))
        keys = CellKeys.joint(bound, lo, hi)
        out = []
        for c, (owner, rows, V) in zip(cands, values, strict=True):
            first, _ = keys.groups(owner, c.part.idx, V)
            keep = rows[first]  # in list order per person, so still cheapest first
            counts = np.bincount(owner[first], minlength=n)
            out.append(
                Candidates(
                    part=c.part,
                    sub=np.arange(n),
                    offsets=np.concatenate([[0], np.cumsum(counts)]),
                    C=c.C[keep],
                    costs=c.costs[keep],
                    exact=c.exact[c.sub],
                    gain=None if c.gain is None else c.gain[keep],
                )
            )
        return out

    def _bound_check(
        self, bound: TreeBound, denied: np.ndarray, active: np.ndarray, which: np.ndarray,
        branch: bool,
    ) -> None:
        """Tree ensembles: people whose best possible score over a box around A(x) is below
        the threshold are fixed; with ``branch`` the box is refined by branch and bound.
        Rows with missing values are left alone (a box around them bounds nothing)."""
        which = np.flatnonzero(which & np.all(np.isfinite(self.U[denied]), axis=1))
        if which.size == 0:
            return
        denied = denied[which]
        X = self.U[denied]
        lo, hi = value_box(self.cas, X)
        zlo, zhi = bound.box(lo, hi)
        if branch:
            fixed = bound.certify(zlo, zhi, self.model.threshold)
        else:
            fixed = bound.upper(zlo, zhi) < self.model.threshold - 1e-9
        self.status[denied[fixed]] = "fixed"
        self.complete[denied[fixed]] = True
        active[which[fixed]] = False

    def _linear_check(
        self, cands: list[Candidates], denied: np.ndarray, exact: np.ndarray, active: np.ndarray
    ):
        """Evaluate each person's best point; where it is denied, the person is fixed."""
        best = self.U[denied].copy()
        chosen = np.zeros((len(denied), len(cands)), dtype=np.int64)
        for k, c in enumerate(cands):
            # the candidate with the largest logit gain (the first such), per list
            lens = np.diff(c.offsets)
            owner = np.repeat(np.arange(len(lens)), lens)
            top = np.maximum.reduceat(c.gain, c.offsets[:-1])
            hit = np.flatnonzero(c.gain == top[owner])
            arg = hit[np.concatenate([[True], owner[hit][1:] != owner[hit][:-1]])]
            chosen[:, k] = arg[c.sub]
            best[:, c.part.idx] += c.C[chosen[:, k]]
        ok = self._score(best) >= self.model.threshold
        self.n_points[denied[exact]] += 1
        fixed = exact & ~ok
        self.status[denied[fixed]] = "fixed"
        self.complete[denied[fixed]] = True
        active &= ~fixed
        return exact & ok, best, chosen

    def _round(
        self,
        cands: list[Candidates],
        denied: np.ndarray,
        persons: np.ndarray,
        lo: int,
        budget: int,
        active: np.ndarray,
    ) -> None:
        """Evaluate ranks ``lo..budget-1`` of every person in ``persons``; issue first flips."""
        npairs = budget * (1.0 + np.log(budget))
        group = max(1, int(_MERGE_CELLS // npairs))
        pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        n_rows = 0
        for g0 in range(0, len(persons), group):
            ps = persons[g0 : g0 + group]
            P, T = top_combinations(cands, ps, budget)
            if P.shape[1] <= lo:
                continue
            costs, index = P[:, lo:], T[:, lo:]
            gi, ri = np.nonzero(np.isfinite(costs))
            if gi.size == 0:
                continue
            pts = self.U[denied[ps[gi]]].copy()
            crow = np.empty((len(gi), len(cands)), dtype=np.int64)
            for k, c in enumerate(cands):
                crow[:, k] = c.offsets[c.sub[ps[gi]]] + index[gi, ri, k]
                pts[:, c.part.idx] += c.C[crow[:, k]]
            pending.append((ps[gi], ri, costs[gi, ri], pts, crow))
            n_rows += len(pts)
            if n_rows >= self.batch_rows:
                self._flush(pending, denied, active)
                pending, n_rows = [], 0
        self._flush(pending, denied, active)

    def _flush(self, pending, denied: np.ndarray, active: np.ndarray) -> None:
        if not pending:
            return
        who = np.concatenate([p[0] for p in pending])
        rank = np.concatenate([p[1] for p in pending])
        costs = np.concatenate([p[2] for p in pending])
        pts = np.concatenate([p[3] for p in pending])
        crow = np.concatenate([p[4] for p in pending])
        scores = self._score(pts)
        np.add.at(self.n_points, denied[who], 1)
        self._keep_best(who, scores, pts, crow)
        flipped, ok = self._success(pts, scores)
        self.seen_flip[denied[who[flipped]]] = True
        flip = np.flatnonzero(ok)
        if flip.size == 0:
            return
        # first flip per person in rank order = the cheapest
        order = flip[np.lexsort((rank[flip], who[flip]))]
        firsts = order[np.concatenate([[True], who[order][1:] != who[order][:-1]])]
        firsts = firsts[active[who[firsts]]]
        u = denied[who[firsts]]
        self.status[u] = "recourse"
        self.complete[u] = True
        self.x_after[u] = pts[firsts]
        self.cost_after[u] = costs[firsts]
        self.score_after[u] = scores[firsts]
        active[who[firsts]] = False

    def _keep_best(self, who: np.ndarray, scores: np.ndarray, pts: np.ndarray,
                   crow: np.ndarray) -> None:
        """Remember each person's highest-scoring point so far: the greedy starts there."""
        order = np.lexsort((-scores, who))
        first = order[np.concatenate([[True], who[order][1:] != who[order][:-1]])]
        better = first[scores[first] > self.best_score[who[first]]]
        w = who[better]
        self.best_score[w] = scores[better]
        self.best_pt[w] = pts[better]
        self.best_rows[w] = crow[better]

    def _deviations(self, c: Candidates, persons: np.ndarray, denied: np.ndarray,
                    limit: np.ndarray):
        """Per person, the first ``limit`` candidates of part ``c``: (owner, candidate row)."""
        s = c.sub[persons]
        lens = np.minimum(c.offsets[s + 1] - c.offsets[s], limit)
        owner = np.repeat(np.arange(len(persons)), lens)
        pos = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        return owner, np.repeat(c.offsets[s], lens) + pos

    def _greedy(
        self, cands: list[Candidates], denied: np.ndarray, persons: np.ndarray,
        active: np.ndarray, starts: list[np.ndarray], fallback,
    ) -> None:
        """After the exact search: greedy ascent on the score, one part at a time, from several
        start points per person; the cheapest success across starts is issued.

        Start points: the person's own point, the highest-scoring point the exact search had
        met at each rung of the budget (8, 32, 128, ...: a larger budget passes the same rungs,
        so its starts include a smaller budget's), and for logistic regression the best point
        of ``A(x)``. From each start, each round tries every candidate of every part (the
        cheapest :data:`_GREEDY_PER_PART`) with the other parts held, and keeps the move that
        raises the score most, until the point flips the decision (and passes ``accept``) or
        no move helps. Successes are made cheaper part by part (:meth:`_cheapen`) and the
        cheapest per person is issued with ``complete=False``: valid and inside the action
        set, but not proven to be the cheapest. Nothing here depends on the budget except the
        rung starts, so a larger budget never finds less.
        """
        null = np.stack([c.offsets[c.sub[persons]] for c in cands], axis=1)
        lane_rows = [null] + [s[persons] for s in starts]
        lane_pts = [self.U[denied[persons]]] + [self._point(cands, denied, persons, r)
                                                 for r in lane_rows[1:]]
        if fallback is not None:  # logistic regression: the best point of A(x), known to flip
            has, best, chosen = fallback
            take = np.flatnonzero(has[persons])
            lane_rows.append(chosen[persons[take]])
            lane_pts.append(best[persons[take]])
        owner = np.concatenate(
            [np.arange(len(persons))] * (len(lane_rows) - (fallback is not None))
            + ([take] if fallback is not None else [])
        )
        chosen = np.concatenate(lane_rows)
        cur = np.concatenate(lane_pts)
        # one lane per distinct start of each person, in a fixed order (own point first)
        _, first = np.unique(np.column_stack([owner, chosen]), axis=0, return_index=True)
        first = np.sort(first)
        owner, chosen, cur = owner[first], chosen[first], cur[first]
        lanes = persons[owner]
        rows = denied[lanes]
        score = self._score(cur)
        np.add.at(self.n_points, rows, 1)
        won = self._success(cur, score)[1]  # current point flips and is accepted
        going = np.ones(len(lanes), dtype=bool)
        for _ in range(4 * len(cands)):
            idx = np.flatnonzero(going & ~won)
            if idx.size == 0:
                break
            # lanes of one person that reached the same point go on as one (same future)
            _, keep = np.unique(np.column_stack([owner[idx], chosen[idx]]), axis=0,
                                return_index=True)
            twin = np.setdiff1d(np.arange(idx.size), keep)
            going[idx[twin]] = False
            idx = idx[np.sort(keep)]
            owners, parts, cand_rows, pts = [], [], [], []
            for k, c in enumerate(cands):
                o, r = self._deviations(c, lanes[idx], denied, np.full(idx.size, _GREEDY_PER_PART))
                P = cur[idx[o]].copy()
                P[:, c.part.idx] += c.C[r] - c.C[chosen[idx[o], k]]
                owners.append(idx[o])
                parts.append(np.full(len(o), k))
                cand_rows.append(r)
                pts.append(P)
            own, part = np.concatenate(owners), np.concatenate(parts)
            cand, P = np.concatenate(cand_rows), np.concatenate(pts)
            sc = self._score(P)
            np.add.at(self.n_points, rows[own], 1)
            order = np.lexsort((-sc, own))  # per lane, best score first
            best = order[np.concatenate([[True], own[order][1:] != own[order][:-1]])]
            who = own[best]
            better = sc[best] > score[who] + 1e-12
            going[who[~better]] = False
            w, f = who[better], best[better]
            chosen[w, part[f]] = cand[f]
            cur[w] = P[f]
            score[w] = sc[f]
            flips, won[w] = self._success(P[f], sc[f])
            self.seen_flip[rows[w[flips]]] = True
        ok = np.flatnonzero(won)
        if ok.size == 0:
            return
        self.seen_flip[rows[ok]] = True
        pts, success = self._cheapen(cands, denied, lanes[ok], chosen[ok], cur[ok], score[ok])
        ok, pts = ok[success], pts[success]
        if ok.size == 0:
            return
        costs = self.cost(self.U[rows[ok]], pts)
        order = np.lexsort((ok, costs, owner[ok]))  # cheapest lane per person, first on ties
        pick = order[np.concatenate([[True], owner[ok][order][1:] != owner[ok][order][:-1]])]
        self._issue(rows[ok[pick]], pts[pick], complete=False)
        issued = self.status[rows[ok[pick]]] == "recourse"
        active[lanes[ok[pick][issued]]] = False

    def _point(self, cands: list[Candidates], denied: np.ndarray, persons: np.ndarray,
               chosen: np.ndarray) -> np.ndarray:
        """The points of ``persons`` that take candidate rows ``chosen`` (one per part)."""
        P = self.U[denied[persons]].copy()
        for k, c in enumerate(cands):
            P[:, c.part.idx] += c.C[chosen[:, k]]
        return P

    def _cheapen(
        self, cands: list[Candidates], denied: np.ndarray, persons: np.ndarray,
        chosen: np.ndarray, cur: np.ndarray, score: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Make successful points cheaper part by part: in each part, the cheapest candidate
        (of the first :data:`_GREEDY_PER_PART`) that keeps the flip and acceptance.

        Returns the cheapened points and whether each still succeeds (it does, unless the
        model's scores are not reproducible).
        """
        rows = denied[persons]
        chosen, cur, score = chosen.copy(), cur.copy(), score.copy()
        flipped = np.arange(len(persons))
        for k, c in enumerate(cands):
            o, r = self._deviations(c, persons[flipped], denied,
                                    np.full(flipped.size, _GREEDY_PER_PART))
            who = flipped[o]
            cheaper = c.costs[r] < c.costs[chosen[who, k]]
            who, r = who[cheaper], r[cheaper]
            if who.size == 0:
                continue
            P = cur[who].copy()
            P[:, c.part.idx] += c.C[r] - c.C[chosen[who, k]]
            sc = self._score(P)
            np.add.at(self.n_points, rows[who], 1)
            ok = np.flatnonzero(self._success(P, sc)[1])
            if ok.size == 0:
                continue
            order = ok[np.lexsort((c.costs[r[ok]], who[ok]))]  # cheapest success per person
            first = order[np.concatenate([[True], who[order][1:] != who[order][:-1]])]
            chosen[who[first], k] = r[first]
            cur[who[first]] = P[first]
            score[who[first]] = sc[first]
        return cur, self._success(cur, score)[1]

    def _issue(self, rows: np.ndarray, points: np.ndarray, complete: bool) -> None:
        if rows.size == 0:
            return
        scores = self._score(points)
        ok = self._success(points, scores)[1]
        rows, points, scores = rows[ok], points[ok], scores[ok]
        self.status[rows] = "recourse"
        self.complete[rows] = complete
        self.x_after[rows] = points
        self.score_after[rows] = scores
        self.cost_after[rows] = self.cost(self.U[rows], points)

    # -- output -------------------------------------------------------------------------------
    def result(self, U: np.ndarray, inv: np.ndarray) -> RecourseResult:
        d = self.cas.d
        if len(inv) == 0:
            empty = np.zeros((0, d))
            none = np.zeros(0)
            return self._pack(none.astype(str), none.astype(bool), none.astype(np.int64),
                              none, empty, none, none, empty)
        action = self.x_after - U
        return self._pack(
            self.status[inv].astype(str),
            self.complete[inv],
            self.n_points[inv],
            self.score[inv],
            action[inv],
            self.cost_after[inv],
            self.score_after[inv],
            self.x_after[inv],
            grid_exact=self._grid_exact(U)[inv],
        )

    def _grid_exact(self, U: np.ndarray) -> np.ndarray:
        """Per row: no actionable float feature can move, so the candidate grid is A(x)."""
        out = np.ones(len(U), dtype=bool)
        for part in self.cas.parts:
            for li, j in enumerate(part.idx):
                el = self.cas.elements[int(j)]
                if part.actionable[li] and not el.discrete:
                    lo, hi = el.action_bounds(U[:, int(j)])
                    out &= (np.asarray(lo) == 0) & (np.asarray(hi) == 0)
        return out

    def _pack(self, status, complete, n_points, score, action, cost, score_after, x_after,
              grid_exact=None):
        return RecourseResult(
            feature_names=self.cas.names,
            status=np.asarray(status, dtype=str),
            complete=np.asarray(complete, dtype=bool),
            n_points=np.asarray(n_points, dtype=np.int64),
            score=score,
            action=action,
            cost=cost,
            score_after=score_after,
            x_after=x_after,
            grid_exact=(np.zeros(len(status), dtype=bool) if grid_exact is None
                        else np.asarray(grid_exact, dtype=bool)),
            model_version=self.model.version,
            action_set_version=self.cas.version,
            action_set_sha256=self.cas.sha256,
            cost_kind=self.cost.kind,
            cost_sha256=self.cost.sha256,
        )
