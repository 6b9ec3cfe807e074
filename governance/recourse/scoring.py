"""Feature responsiveness scores (Cheon, Wernerfelt, Friedler and Ustun, ICLR 2025).

``mu_j(x)`` is the share of the single-feature interventions ``A_j(x)`` on feature ``j``
whose prediction is the favourable class (``model.score >= model.threshold``). When
``A_j(x)`` is empty (``j`` immutable, or no feasible change) the paper sets ``mu_j(x) = 0``;
:attr:`ResponsivenessResult.mu` keeps that convention for comparisons with reachml, and
:attr:`ResponsivenessResult.no_action` marks those entries, so that "no feasible change" is
never read as "a change that cannot help" (the ledger stores them as their own state). A score
of 0 on a feature that *can* change means that changing this feature alone cannot lead to
approval; a joint action with other features still may.

``A_j(x)`` follows reachml's ``EnumeratingScorer``: for each non-zero value ``a_j`` on ``j``'s
own reachable grid, the joint actions of ``j``'s constraint neighbourhood (the features
sharing a constraint with ``j``; all others stay put) whose total change on ``j`` is ``a_j``.
Which of them count depends on ``semantics``:

- ``"paper"`` (default), the method of the paper and of its code (reachml's research scripts
  and its own ``tests/test_scorer.py``): reachml's solver meets the joint actions in order of
  their own-action L1 norm and stops at the first one that changes ``j`` alone, so when
  changing ``j`` alone is feasible ``A_j(x)`` holds ``a_j e_j`` plus the joint actions of
  strictly smaller L1 norm (those occur when ``j`` is a linkage target with ``|scale| > 1``,
  or a linkage source whose target can move too); joint actions whose L1 norm ties with the
  single-feature one are left out (the solver's order among ties is arbitrary). Otherwise
  every feasible joint action with that change (say, a thermometer dummy turned on together
  with all dummies below it in every valid way).
- ``"release"``: reachml 0.2.0a1 as released, which comments out that early stop, so
  ``A_j(x)`` holds every feasible joint action of the neighbourhood with that change, also
  when changing ``j`` alone is feasible (a thermometer dummy turned on alone, and turned on
  together with the dummies above it). The two differ only on multi-feature parts; on the
  German credit action set they differ on the checking and savings thermometers.

Discrete features are enumerated exactly (method ``"enumerated"``). Float features are
continuous and sampled (method ``"sampled"``, the same in both semantics): ``n_samples`` draws
``a_j ~ U[LB_j(x), UB_j(x)]``, each mapped to its minimum-L1 feasible joint action (draws
with none are dropped), seeded by :func:`governance.hashing.row_seeds` on the person's
actionable features, so scores are identical across processes, reruns and row orders.

Deviations from reachml, by design: a discrete feature is enumerated even when the action set
has float features elsewhere (reachml then samples every feature); a discrete feature whose
part holds a float feature is scored on min-L1 joint actions over the float's grid; the
neighbourhood's actions must satisfy every constraint of the part (reachml's sub-problem drops
constraints that reach outside the neighbourhood), so only truly feasible actions count.

All candidate points of a chunk are scored in a few large ``model.score`` calls, and rows are
deduplicated first, so repeated applicants cost nothing. Candidates that are the same point
(one joint action serving several features of a part) are scored once. For tree ensembles
(see :mod:`governance.recourse`) a single-feature part's draws and grid values are grouped by
threshold cell: among the split nodes the person can reach while only that feature moves,
values in the same cell take the same path through every tree, so one of them is scored for
all, with bit-identical results (one model row per cell instead of one per draw). The parsed
trees must first reproduce the model's scores on a few of the people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance.arrays import first_of_groups, unique_rows
from governance.hashing import row_seeds
from governance.recourse.action_set import ActionSet
from governance.recourse.reachable import (
    TOL,
    CompiledActionSet,
    Part,
    action_classes,
    check_actionable_finite,
    compile_action_set,
    model_matrix,
    value_box,
)
from governance.registry.model import DecisionModel
from governance.registry.trees import CellKeys, model_structure

BATCH_ROWS = 250_000  # candidate points per model call
SEMANTICS = ("paper", "release")
_CHECK_ROWS = 64  # rows on which a parsed tree ensemble must reproduce the model's scores


@dataclass(frozen=True)
class ResponsivenessResult:
    """Responsiveness scores of a chunk of people.

    Attributes
    ----------
    feature_names : tuple of str
        Model schema order.
    mu : ndarray of shape (n_rows, n_features)
        ``mu_j(x)`` in [0, 1]; 0 where ``A_j(x)`` is empty (the paper's convention, see
        :attr:`no_action`).
    n_points : ndarray of shape (n_rows, n_features)
        Size of ``A_j(x)`` (enumerated) or number of kept draws (sampled); 0 when ``A_j(x)``
        is empty.
    method : tuple of str
        Per feature, ``"enumerated"`` or ``"sampled"`` (immutable features are "enumerated":
        their empty set is known exactly).
    semantics : str
        ``"paper"`` or ``"release"`` (see the module docstring).
    model_version, action_set_version, action_set_sha256 : str
        Provenance.
    """

    feature_names: tuple[str, ...]
    mu: np.ndarray
    n_points: np.ndarray
    method: tuple[str, ...]
    semantics: str = "paper"
    model_version: str = ""
    action_set_version: str = ""
    action_set_sha256: str = ""

    @property
    def no_action(self) -> np.ndarray:
        """True where ``A_j(x)`` is empty: no feasible change of the feature at all (immutable,
        at its bound, or every draw infeasible). Its ``mu`` is 0 by convention, not a score."""
        return self.n_points == 0

    @property
    def state(self) -> np.ndarray:
        """Per entry, ``"scored"`` or ``"no_action"`` (see :attr:`no_action`)."""
        return np.where(self.no_action, "no_action", "scored").astype(object)

    def to_frame(self) -> pd.DataFrame:
        """One row per (person, feature): ``row``, ``feature``, ``mu`` (NaN where no action is
        feasible), ``state``, ``n_points``, ``method``."""
        n, d = self.mu.shape
        return pd.DataFrame(
            {
                "row": np.repeat(np.arange(n), d),
                "feature": np.tile(np.asarray(self.feature_names, dtype=object), n),
                "mu": np.where(self.no_action, np.nan, self.mu).ravel(),
                "state": self.state.ravel(),
                "n_points": self.n_points.ravel(),
                "method": np.tile(np.asarray(self.method, dtype=object), n),
            }
        )


def responsiveness(
    model: DecisionModel,
    action_set: ActionSet,
    X: np.ndarray,
    *,
    n_samples: int = 500,
    seed: int = 0,
    semantics: str = "paper",
) -> ResponsivenessResult:
    """Responsiveness score of every feature for every row of ``X``.

    Parameters
    ----------
    model : DecisionModel
        Target is approval: ``model.score(x) >= model.threshold``.
    action_set : ActionSet
        Matched to ``model.schema`` by name; features it lacks are immutable.
    X : ndarray of shape (n_rows, n_features) or DataFrame
        Rows in schema order, categories as integer codes (a frame is converted by the model).
    n_samples : int, default=500
        Draws per float feature.
    seed : int, default=0
        Mixed into every row's seed.
    semantics : {"paper", "release"}, default="paper"
        Which joint actions form ``A_j(x)`` when changing ``j`` alone is feasible: the
        paper's early stop, or every joint action as reachml 0.2.0a1 releases it (see the
        module docstring).

    Returns
    -------
    ResponsivenessResult

    Raises
    ------
    ValueError
        If ``semantics`` is not one of :data:`SEMANTICS`.
    ActionSetError
        If the action set does not fit the schema or an actionable value is missing.
    """
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics must be one of {SEMANTICS}; got {semantics!r}")
    cas = compile_action_set(action_set, model.schema)
    M = model_matrix(model, X)
    n, d = M.shape
    method = tuple(
        "sampled" if el.actionable and not el.discrete and _in_part(cas, j) else "enumerated"
        for j, el in enumerate(cas.elements)
    )
    result = dict(
        feature_names=cas.names,
        method=method,
        semantics=semantics,
        model_version=model.version,
        action_set_version=cas.version,
        action_set_sha256=cas.sha256,
    )
    if n == 0:
        return ResponsivenessResult(mu=np.zeros((0, d)), n_points=np.zeros((0, d), int), **result)
    check_actionable_finite(cas, M)
    U, inv = unique_rows(M)
    enum = _EnumeratedSets(cas, U, semantics)
    sampler = _Sampler(cas, U, int(n_samples), int(seed))
    hits = np.zeros((len(U), d))
    counts = np.zeros((len(U), d), dtype=np.int64)
    bound = enum.counts_per_person() + sampler.max_per_person()
    evaluator = _Evaluator(model, cas, U)
    for lo, hi in _blocks(bound, evaluator.block_rows):
        groups = [*enum.groups(lo, hi), *sampler.groups(lo, hi)]
        if not groups:
            continue
        owner, feat, ok = evaluator.approved(groups, lo, hi)
        key = (owner - lo) * d + feat
        size = (hi - lo) * d
        hits[lo:hi] += np.bincount(key, weights=ok, minlength=size).reshape(hi - lo, d)
        counts[lo:hi] += np.bincount(key, minlength=size).reshape(hi - lo, d)
    mu = np.divide(hits, counts, out=np.zeros_like(hits), where=counts > 0)
    return ResponsivenessResult(mu=mu[inv], n_points=counts[inv], **result)


class _Evaluator:
    """Decides which candidates the model approves, with as few model rows as it can.

    Candidates come in groups ``(part, owner, feature, values)``: rows equal to their owner's
    except on the part's columns. Candidates of one owner and part that are the same point are
    scored once. For tree ensembles (see :mod:`governance.recourse`), the candidates of one
    owner in a single-feature part that fall in the same threshold cell, among the splits the
    owner can meet while only that feature moves, are scored once too: the model gives them
    bit-identical scores, so the result is the same as scoring every draw. The parsed trees
    must first reproduce the model's scores on a few of the people (rows sent along with the
    first batch); otherwise every candidate is scored as it is.
    """

    def __init__(self, model: DecisionModel, cas: CompiledActionSet, U: np.ndarray) -> None:
        self.model, self.cas, self.U = model, cas, U
        self.part_index = {id(p): k for k, p in enumerate(cas.parts)}
        structure = model_structure(model)
        self.bound = structure.bound if structure.kind == "tree" else None
        self.keyed = set()
        if self.bound is not None:
            self.keyed = {
                k for k, p in enumerate(cas.parts)
                if p.size == 1 and int(p.idx[0]) in self.bound.numeric
            }
        self.checked = False
        # grouping keeps model calls small, so blocks of candidates may be larger
        self.block_rows = BATCH_ROWS * (4 if self.keyed else 1)

    def _keys(self, lo: int, hi: int) -> CellKeys:
        Ub = self.U[lo:hi]
        vlo, vhi = value_box(self.cas, Ub)
        cols = [int(self.cas.parts[k].idx[0]) for k in sorted(self.keyed)]
        return CellKeys.single(self.bound, Ub, vlo, vhi, cols)

    def approved(self, groups, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Owner, feature and approval of every candidate of the groups (persons lo..hi)."""
        by_part: dict[int, list] = {}
        for part, owner, feat, V in groups:
            by_part.setdefault(self.part_index[id(part)], []).append((owner, feat, V))
        keyed = self.keyed if self.bound is not None else set()
        keys = self._keys(lo, hi) if keyed & set(by_part) else None
        owners, feats, points, back = [], [], [], []
        n_rows = 0
        for k, items in by_part.items():
            part = self.cas.parts[k]
            owner = np.concatenate([o for o, _, _ in items])
            feat = np.concatenate([f for _, f, _ in items])
            V = np.concatenate([v for _, _, v in items])
            if k in keyed:
                first, inv = keys.groups(owner - lo, part.idx, V, first=False)
            elif part.size > 1:  # the same joint action often serves several features
                first, inv = first_of_groups(np.column_stack([owner, V]))
            else:
                first, inv = np.arange(len(V)), np.arange(len(V))
            P = self.U[owner[first]]
            P[:, part.idx] = V[first]
            owners.append(owner)
            feats.append(feat)
            points.append(P)
            back.append(inv + n_rows)
            n_rows += len(P)
        check = None
        if keys is not None and not self.checked:
            check = self.U[lo : lo + _CHECK_ROWS]
            points.insert(0, check)
        P = np.concatenate(points)
        scores = np.concatenate(
            [self.model.score(P[i : i + BATCH_ROWS]) for i in range(0, len(P), BATCH_ROWS)]
        )
        if check is not None:
            self.checked = True
            if not self.bound.matches(check, scores[: len(check)]):
                self.bound = None  # the parse does not reproduce the model: score everything
                return self.approved(groups, lo, hi)
            scores = scores[len(check) :]
        ok = scores >= self.model.threshold
        return np.concatenate(owners), np.concatenate(feats), ok[np.concatenate(back)]


def _in_part(cas: CompiledActionSet, j: int) -> bool:
    return bool(np.isin(j, cas.act_cols))


def _blocks(sizes: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Consecutive person ranges whose summed sizes stay within ``limit`` (one person at least)."""
    out, start, acc = [], 0, 0
    for i, s in enumerate(sizes):
        if acc + s > limit and i > start:
            out.append((start, i))
            start, acc = i, 0
        acc += int(s)
    out.append((start, len(sizes)))
    return out


def _gather(
    U: np.ndarray, lo: int, hi: int, sub: np.ndarray, cat: np.ndarray, offsets: np.ndarray,
    cols: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Part values ``U[u, cols] + actions`` for persons ``lo..hi`` whose action lists are
    ``cat[offsets[s]:offsets[s + 1]]``, and their owners."""
    s = sub[lo:hi]
    m = offsets[s + 1] - offsets[s]
    total = int(m.sum())
    owner = np.repeat(np.arange(lo, hi), m)
    pos = np.arange(total) - np.repeat(np.cumsum(m) - m, m) + np.repeat(offsets[s], m)
    return U[:, cols][owner] + cat[pos], owner


class _EnumeratedSets:
    """``A_j(x)`` of every discrete actionable feature, computed once per class of people with
    the same feasible actions on the part (see :func:`governance.reachable._action_classes`)."""

    def __init__(self, cas: CompiledActionSet, U: np.ndarray, semantics: str = "paper") -> None:
        self.cas, self.U = cas, U
        # (part, column, person -> distinct part value, concatenated actions, offsets)
        self.sets: list[tuple[Part, int, np.ndarray, np.ndarray, np.ndarray]] = []
        for part in cas.parts:
            locs = [
                li
                for li, j in enumerate(part.idx)
                if part.actionable[li] and cas.elements[int(j)].discrete
            ]
            if not locs:
                continue
            Up, sub = action_classes(cas, part, U[:, part.idx])
            per_loc: dict[int, list[np.ndarray]] = {li: [] for li in locs}
            for xp in Up:
                actions = _single_feature_actions(cas, part, xp, locs, semantics)
                for li in locs:
                    per_loc[li].append(actions[li])
            for li in locs:
                lists = per_loc[li]
                offsets = np.concatenate([[0], np.cumsum([len(a) for a in lists])])
                cat = np.concatenate(lists) if offsets[-1] else np.zeros((0, part.size))
                self.sets.append((part, int(part.idx[li]), sub, cat, offsets))

    def counts_per_person(self) -> np.ndarray:
        total = np.zeros(len(self.U), dtype=np.int64)
        for _, _, sub, _, offsets in self.sets:
            total += (offsets[1:] - offsets[:-1])[sub]
        return total

    def groups(self, lo: int, hi: int):
        """Candidates of persons ``lo..hi``: (part, owner, feature, part values) per set."""
        for part, j, sub, cat, offsets in self.sets:
            V, owner = _gather(self.U, lo, hi, sub, cat, offsets, part.idx)
            if len(V):
                yield part, owner, np.full(len(V), j), V


def _single_feature_actions(
    cas: CompiledActionSet, part: Part, xp: np.ndarray, locs: list[int], semantics: str = "paper"
) -> dict[int, np.ndarray]:
    """Per local discrete feature, the total changes (rows, part-local) that form ``A_j(x)``."""
    out: dict[int, np.ndarray] = {}
    if part.discrete:
        A, C = cas.part_actions(part, xp)
        l1 = np.abs(A).sum(axis=1)
        nonzero = np.abs(C) > TOL
        support = nonzero.sum(axis=1)
    for li in locs:
        grid = cas.own_grid(int(part.idx[li]), float(xp[li]))
        grid = grid[grid != 0]
        if grid.size == 0:
            out[li] = np.zeros((0, part.size))
            continue
        if not part.discrete:
            C_min, ok = cas.min_l1_actions(part, xp, li, grid)
            out[li] = C_min[ok]
            continue
        outside = np.setdiff1d(np.arange(part.size), part.neighbours[li])
        moved = np.any(nonzero[:, outside], axis=1) | np.any(np.abs(A[:, outside]) > TOL, axis=1)
        inside = ~moved
        cj = C[:, li]
        sel = inside & nonzero[:, li] & _isin(cj, grid)
        if semantics == "release":
            keep = sel
        else:  # stop at the single-feature action: keep it and the joint actions before it
            alone = sel & (support == 1)
            keep = sel & ~_isin(cj, cj[alone])  # values where j cannot change alone: all
            for v in np.unique(np.round(cj[alone], 9)):
                at = sel & (np.abs(cj - v) <= 1e-9)
                first = l1[at & alone].min()
                keep |= at & ((l1 < first - TOL) | (alone & (l1 <= first + TOL)))
        rows = C[keep]
        out[li] = rows[np.lexsort((np.arange(len(rows)), rows[:, li]))]
    return out


def _isin(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    return np.isin(np.round(values, 9), np.round(grid, 9))


class _Sampler:
    """Draws for float actionable features, seeded per person from its actionable values."""

    def __init__(self, cas: CompiledActionSet, U: np.ndarray, n_samples: int, seed: int) -> None:
        self.cas, self.U, self.n = cas, U, max(int(n_samples), 0)
        self.features: list[tuple[Part, int, int]] = [
            (part, li, int(j))
            for part in cas.parts
            for li, j in enumerate(part.idx)
            if part.actionable[li] and not cas.elements[int(j)].discrete
        ]
        self.seeds = row_seeds(U[:, cas.act_cols], seed) if self.features else None

    def max_per_person(self) -> np.ndarray:
        return np.full(len(self.U), self.n * len(self.features), dtype=np.int64)

    def _uniforms(self, lo: int, hi: int) -> np.ndarray:
        k = len(self.features)
        out = np.empty((hi - lo, k, self.n))
        for i, s in enumerate(self.seeds[lo:hi]):
            out[i] = np.random.default_rng(int(s)).random((k, self.n))
        return out

    def groups(self, lo: int, hi: int):
        """Candidates of persons ``lo..hi``: (part, owner, feature, part values) per draw set."""
        if not self.features or self.n == 0:
            return
        R = self._uniforms(lo, hi)
        for f, (part, li, j) in enumerate(self.features):
            el = self.cas.elements[j]
            xj = self.U[lo:hi, j]
            lb, ub = el.action_bounds(xj)
            draws = lb[:, None] + R[:, f, :] * (ub - lb)[:, None]
            valid = (draws != 0) & (ub > lb)[:, None]
            if part.size == 1:
                owner = np.repeat(np.arange(lo, hi), valid.sum(axis=1))
                if len(owner):
                    V = (self.U[owner, j] + draws[valid])[:, None]
                    yield part, owner, np.full(len(owner), j), V
                continue
            for i in range(hi - lo):
                v = draws[i, valid[i]]
                if v.size == 0:
                    continue
                u = lo + i
                C, ok = self.cas.min_l1_actions(part, self.U[u, part.idx], li, v)
                if not ok.any():
                    continue
                V = self.U[u, part.idx] + C[ok]
                yield part, np.full(len(V), u), np.full(len(V), j), V

