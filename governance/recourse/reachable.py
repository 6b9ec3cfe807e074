"""Reachable sets: feasible joint actions per part of an action set, enumerated with numpy.

An action set is compiled against a model schema (:func:`compile_action_set`): features are
matched by name, features the action set does not list are immutable, and the features are
split into the parts of the constraint graph that hold an actionable feature. For one person
and one part, every candidate joint action is built as the Cartesian product of each
feature's own reachable grid (respecting bounds, direction and step bounds), linked targets
are derived (``c = a + a @ B``, reachml's non-transitive directional linkage), and every
constraint of the part filters the product at once. The person's reachable set is the product
of these per-part sets (reachml's decomposition), the null action included.

Discrete features (bool, int, category) are enumerated exactly. Float features are continuous;
where a finite candidate set is needed they are replaced by a grid (multiples of their
``step_size`` within the reachable interval, plus both interval ends and the current value), so
sets that involve a float feature are not complete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from governance.arrays import unique_rows
from governance.exceptions import ActionSetError
from governance.recourse.action_set import ActionElement, ActionSet
from governance.recourse.constraints import Constraint, DirectionalLinkage
from governance.registry.schema import FeatureSchema

MAX_PART_POINTS = 2_000_000  # candidate joint actions of one part for one person
MAX_FLOAT_GRID = 5_000  # grid points of one float feature; a coarser step is used beyond
TOL = 1e-9


@dataclass(frozen=True)
class Part:
    """One part of the partition: features that share constraints, at least one actionable.

    Attributes
    ----------
    idx : ndarray of int
        Columns of the part in the compiled (schema) order.
    names : tuple of str
    actionable : ndarray of bool
        Per local feature.
    discrete : bool
        True if every feature of the part is discrete (the part is enumerated exactly).
    B : ndarray of shape (p, p)
        Linkage effects: ``B[s, t]`` is the change of target ``t`` per unit of own action on
        source ``s``; total changes are ``c = a + a @ B``.
    links : tuple of (source, target, scale, keep_bounds)
        Local indices of every directional link.
    constraints : tuple of (Constraint, ndarray)
        Non-linkage constraints with the local indices of their features.
    neighbours : tuple of ndarray
        Per local feature, local indices of the features sharing a constraint with it
        (itself included): the sub-problem reachml's scorer solves for that feature.
    """

    idx: np.ndarray
    names: tuple[str, ...]
    actionable: np.ndarray
    discrete: bool
    B: np.ndarray
    links: tuple[tuple[int, int, float, bool], ...]
    constraints: tuple[tuple[Constraint, np.ndarray], ...]
    neighbours: tuple[np.ndarray, ...]

    @property
    def size(self) -> int:
        return len(self.idx)

    @property
    def has_links(self) -> bool:
        return bool(self.links)


@dataclass(frozen=True)
class CompiledActionSet:
    """An action set bound to a feature order (a model schema), ready for enumeration.

    Attributes
    ----------
    names : tuple of str
        Feature order of the rows it works on.
    elements : tuple of ActionElement
        One per feature; features absent from the action set get an immutable element.
    parts : tuple of Part
        Parts with at least one actionable feature.
    act_cols : ndarray of int
        Columns that belong to some part (the "actionable part" of a row).
    version, sha256 : str
        Provenance of the action set.
    """

    names: tuple[str, ...]
    elements: tuple[ActionElement, ...]
    parts: tuple[Part, ...]
    act_cols: np.ndarray
    version: str
    sha256: str

    @property
    def d(self) -> int:
        return len(self.names)

    # -- per feature --------------------------------------------------------------------------
    def own_grid(self, j: int, xj: float) -> np.ndarray:
        """Sorted own actions of column ``j`` at value ``xj``, 0 included.

        Discrete features: every multiple of ``step_size`` within ``[LB_j(x), UB_j(x)]``
        (reachml's ``reachable_grid``, anchored at ``x``). Float features: the grid values
        ``k * step_size`` in the reachable interval plus its two ends (see module docstring).
        """
        el = self.elements[j]
        lo, hi = (float(v) for v in el.action_bounds(xj))
        if lo == 0.0 and hi == 0.0:
            return np.zeros(1)
        s = el.grid_step
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ActionSetError(
                f"feature {el.name!r} is actionable but unbounded at value {xj:g}; "
                f"set lb/ub or step bounds"
            )
        if el.discrete:
            k = np.arange(np.ceil(lo / s - TOL), np.floor(hi / s + TOL) + 1)
            a = k * s
            a[k == 0] = 0.0
            return a
        vlo, vhi = xj + lo, xj + hi
        n = np.floor(vhi / s) - np.ceil(vlo / s) + 1
        if n > MAX_FLOAT_GRID:
            s = s * np.ceil(n / MAX_FLOAT_GRID)
        values = np.arange(np.ceil(vlo / s), np.floor(vhi / s) + 1) * s
        values = np.unique(np.concatenate([values, [vlo, vhi, xj]]))
        a = values - xj
        a[values == xj] = 0.0
        return a

    def own_grids(self, j: int, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`own_grid` of column ``j`` for many values at once (identical numbers).

        Returns
        -------
        owner : ndarray of int
            Index into ``xs`` of every action, grouped by owner in order.
        actions : ndarray of float
            Each owner's sorted own actions, 0 included.
        """
        el = self.elements[j]
        xs = np.asarray(xs, dtype=float).ravel()
        lo, hi = (np.asarray(v, dtype=float) for v in el.action_bounds(xs))
        still = (lo == 0.0) & (hi == 0.0)
        bad = ~still & ~(np.isfinite(lo) & np.isfinite(hi))
        if np.any(bad):
            raise ActionSetError(
                f"feature {el.name!r} is actionable but unbounded at value "
                f"{xs[np.argmax(bad)]:g}; set lb/ub or step bounds"
            )
        s = np.full(len(xs), float(el.grid_step))
        if el.discrete:
            k0 = np.ceil(lo / s - TOL)
            k1 = np.floor(hi / s + TOL)
        else:
            vlo, vhi = xs + lo, xs + hi
            n = np.floor(vhi / s) - np.ceil(vlo / s) + 1
            s = np.where(n > MAX_FLOAT_GRID, s * np.ceil(n / MAX_FLOAT_GRID), s)
            k0, k1 = np.ceil(vlo / s), np.floor(vhi / s)
        counts = np.where(still, 0, np.maximum(k1 - k0 + 1, 0)).astype(np.int64)
        owner = np.repeat(np.arange(len(xs)), counts)
        k = np.repeat(k0, counts) + (np.arange(int(counts.sum())) - np.repeat(
            np.cumsum(counts) - counts, counts))
        if el.discrete:
            a = k * s[owner]
            a[k == 0] = 0.0
            owner = np.concatenate([owner, np.flatnonzero(still)])
            a = np.concatenate([a, np.zeros(int(still.sum()))])
            order = np.lexsort((a, owner))
            return owner[order], a[order]
        values = np.concatenate([k * s[owner], vlo, vhi, xs])
        owner = np.concatenate([owner, np.arange(len(xs)), np.arange(len(xs)), np.arange(len(xs))])
        keep = ~still[owner] | (values == xs[owner])  # a person who cannot move: x alone
        values, owner = values[keep], owner[keep]
        order = np.lexsort((values, owner))
        values, owner = values[order], owner[order]
        new = np.concatenate([[True], (owner[1:] != owner[:-1]) | (values[1:] != values[:-1])])
        values, owner = values[new], owner[new]
        a = values - xs[owner]
        a[values == xs[owner]] = 0.0
        return owner, a

    def bounds(self, idx: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Action bounds ``LB_j(x), UB_j(x)`` of columns ``idx`` at values ``x``."""
        pairs = [self.elements[int(j)].action_bounds(float(v)) for j, v in zip(idx, x, strict=True)]
        return (
            np.array([float(p[0]) for p in pairs]),
            np.array([float(p[1]) for p in pairs]),
        )

    # -- per part -----------------------------------------------------------------------------
    def part_feasible(
        self, part: Part, xp: np.ndarray, A: np.ndarray, C: np.ndarray
    ) -> np.ndarray:
        """Mask of candidate joint actions (own ``A``, total ``C``) that satisfy the part.

        Checks the bounds of linked targets (widened unless ``keep_bounds``), integrality of
        discrete targets, and every constraint. Own-action bounds are the caller's duty
        (the grids respect them).
        """
        mask = np.ones(len(A), dtype=bool)
        if part.has_links:
            lb, ub = self.bounds(part.idx, xp)
            clo, chi = lb.copy(), ub.copy()
            targets = set()
            for s, t, sc, keep in part.links:
                targets.add(t)
                if not keep:
                    clo[t] += min(sc * lb[s], sc * ub[s])
                    chi[t] += max(sc * lb[s], sc * ub[s])
            for t in sorted(targets):
                ct = C[:, t]
                mask &= (ct >= clo[t] - TOL) & (ct <= chi[t] + TOL)
                if self.elements[int(part.idx[t])].discrete:
                    mask &= np.abs(ct - np.round(ct)) <= TOL
        if part.constraints:
            lb, ub = self.bounds(part.idx, xp)
            for con, loc in part.constraints:
                mask &= con.feasible(xp[loc], A[:, loc], C[:, loc], lb[loc], ub[loc])
        return mask

    def part_actions(self, part: Part, xp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All feasible joint actions of ``part`` at its values ``xp``.

        Returns
        -------
        A, C : ndarray of shape (m, p)
            Own actions and total changes; row 0 is the null action (always kept, so a
            person whose current values break a constraint may still stay where they are).
        """
        grids = [self.own_grid(int(j), float(v)) for j, v in zip(part.idx, xp, strict=True)]
        A = _cartesian(grids, part.names)
        C = A + A @ part.B if part.has_links else A
        mask = self.part_feasible(part, xp, A, C)
        null = np.flatnonzero(np.all(A == 0, axis=1))
        mask[null] = True
        order = np.concatenate([null, np.flatnonzero(mask & ~np.all(A == 0, axis=1))])
        return A[order], C[order]

    def min_l1_actions(
        self, part: Part, xp: np.ndarray, li: int, values: np.ndarray, *, restrict: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """For each target total change of local feature ``l``, the minimum-L1 feasible action.

        L1 is ``sum |a_k|`` over own actions (reachml's objective). Other features of the part
        range over their grids; with ``restrict`` the features outside ``l``'s neighbourhood
        stay fixed (reachml's per-feature sub-problem). Ties prefer the action changing only
        ``l``, then the first in grid order.

        Returns
        -------
        C : ndarray of shape (len(values), p)
            Total changes (NaN rows where no feasible action exists).
        ok : ndarray of bool
        """
        values = np.asarray(values, dtype=float)
        p = part.size
        nb = set(part.neighbours[li].tolist()) if restrict else set(range(p))
        grids = [
            np.zeros(1)
            if k == li or k not in nb
            else self.own_grid(int(part.idx[k]), float(xp[k]))
            for k in range(p)
        ]
        others = _cartesian(grids, part.names)
        lb, ub = self.bounds(part.idx, xp)
        el = self.elements[int(part.idx[li])]
        b = others @ part.B[:, li] if part.has_links else np.zeros(len(others))
        out = np.full((len(values), p), np.nan)
        ok = np.zeros(len(values), dtype=bool)
        chunk = max(1, MAX_PART_POINTS // max(len(others), 1))
        for start in range(0, len(values), chunk):
            v = values[start : start + chunk]
            al = v[:, None] - b[None, :]  # own action of li that yields total change v
            A = np.repeat(others[None, :, :], len(v), axis=0)
            A[:, :, li] = al
            A = A.reshape(-1, p)
            C = A + A @ part.B if part.has_links else A
            good = (A[:, li] >= lb[li] - TOL) & (A[:, li] <= ub[li] + TOL)
            if el.discrete:
                q = A[:, li] / el.grid_step
                good &= np.abs(q - np.round(q)) <= TOL
            good &= self.part_feasible(part, xp, A, C)
            cost = np.abs(A).sum(axis=1)
            alone = (np.abs(C) > TOL).sum(axis=1) <= 1
            cost = np.where(good, cost - 1e-12 * alone, np.inf).reshape(len(v), len(others))
            best = np.argmin(cost, axis=1)
            found = np.isfinite(cost[np.arange(len(v)), best])
            rows = C.reshape(len(v), len(others), p)[np.arange(len(v)), best]
            out[start : start + len(v)][found] = rows[found]
            ok[start : start + len(v)] = found
        return out, ok

    def part_contains(self, part: Part, xp: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Whether total changes ``c`` (rows) are feasible joint actions of ``part`` at ``xp``."""
        c = np.atleast_2d(np.asarray(c, dtype=float))
        A = c @ np.linalg.inv(np.eye(part.size) + part.B) if part.has_links else c
        lb, ub = self.bounds(part.idx, xp)
        ok = np.all((lb - TOL <= A) & (ub + TOL >= A), axis=1)
        for li, j in enumerate(part.idx):
            el = self.elements[int(j)]
            if el.discrete:
                q = A[:, li] / el.grid_step
                ok &= np.abs(q - np.round(q)) <= 1e-6
        A = np.where(np.abs(A) <= 1e-9, 0.0, A)
        ok &= self.part_feasible(part, xp, A, c)
        return ok | np.all(np.abs(c) <= TOL, axis=1)


def _cartesian(grids: Sequence[np.ndarray], names: Sequence[str]) -> np.ndarray:
    sizes = [len(g) for g in grids]
    total = int(np.prod(sizes, dtype=float)) if sizes else 1
    if total > MAX_PART_POINTS:
        raise ActionSetError(
            f"part [{', '.join(names)}] has {total} candidate joint actions at this point "
            f"(limit {MAX_PART_POINTS}); tighten its bounds or coarsen step_size"
        )
    if len(grids) == 1:
        return grids[0][:, None].astype(float)
    mesh = np.meshgrid(*grids, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1).astype(float)


def compile_action_set(
    action_set: ActionSet, schema: FeatureSchema | Sequence[str] | None = None
) -> CompiledActionSet:
    """Bind ``action_set`` to a feature order.

    Parameters
    ----------
    action_set : ActionSet
    schema : FeatureSchema, sequence of str or None
        Model schema (checked with :meth:`ActionSet.check_schema`) or plain feature names;
        None uses the action set's own order.

    Raises
    ------
    ActionSetError
        If the action set is malformed, names a feature the schema lacks, or its categories
        differ from the schema's.
    """
    action_set.check()
    if schema is None:
        names = tuple(action_set.names)
    elif isinstance(schema, FeatureSchema):
        action_set.check_schema(schema)
        names = tuple(schema.names)
    else:
        names = tuple(str(n) for n in schema)
        missing = [n for n in action_set.names if n not in names]
        if missing:
            raise ActionSetError(
                f"action set feature(s) {', '.join(missing)} not among the given names"
            )
    col = {n: j for j, n in enumerate(names)}
    elements = tuple(
        action_set[n] if n in action_set else ActionElement(n, "float", actionable=False)
        for n in names
    )
    parts = []
    for part_names in action_set.actionable_partition:
        idx = np.array(sorted(col[n] for n in part_names), dtype=np.int64)
        local = {names[j]: li for li, j in enumerate(idx)}
        p = len(idx)
        B = np.zeros((p, p))
        links, cons = [], []
        for con in action_set.constraints:
            if con.names[0] not in local:
                continue
            loc = np.array([local[n] for n in con.names], dtype=np.int64)
            if isinstance(con, DirectionalLinkage):
                for t, sc in zip(loc[1:], con.scales, strict=True):
                    B[loc[0], t] += sc
                    links.append((int(loc[0]), int(t), float(sc), con.keep_bounds))
            else:
                cons.append((con, loc))
        neighbours = tuple(
            np.array(sorted(local[m] for m in action_set.neighbours(names[j])), dtype=np.int64)
            for j in idx
        )
        parts.append(
            Part(
                idx=idx,
                names=tuple(names[j] for j in idx),
                actionable=np.array([elements[j].actionable for j in idx]),
                discrete=all(elements[j].discrete for j in idx),
                B=B,
                links=tuple(links),
                constraints=tuple(cons),
                neighbours=neighbours,
            )
        )
    act_cols = np.array(sorted(int(j) for p in parts for j in p.idx), dtype=np.int64)
    return CompiledActionSet(
        names=names,
        elements=elements,
        parts=tuple(parts),
        act_cols=act_cols,
        version=action_set.version,
        sha256=action_set.sha256,
    )


class ReachableSet(NamedTuple):
    """Every point a person can reach, as returned by :func:`reachable_set`.

    Attributes
    ----------
    X : ndarray of shape (n_points, n_features)
        Reachable points; row 0 is the person's own point.
    actions : ndarray of shape (n_points, n_features)
        ``X - x``.
    complete : bool
        True when every actionable feature is discrete, so ``X`` is the whole reachable set;
        False when float features were replaced by their grids.
    """

    X: np.ndarray
    actions: np.ndarray
    complete: bool


def reachable_set(
    action_set: ActionSet | CompiledActionSet,
    x: np.ndarray,
    names: FeatureSchema | Sequence[str] | None = None,
) -> ReachableSet:
    """Enumerate the reachable set ``R(x)`` of one person (product of per-part sets).

    Parameters
    ----------
    action_set : ActionSet or CompiledActionSet
    x : array-like of shape (n_features,)
        The person, in the order of ``names`` (default: the action set's order).
    names : FeatureSchema, sequence of str or None

    Returns
    -------
    ReachableSet

    Examples
    --------
    >>> from governance.action_set import ActionElement
    >>> A = ActionSet([ActionElement("x1", "int", lb=0, ub=2), ActionElement("x2", "bool")])
    >>> reachable_set(A, [0, 1]).X.tolist()
    [[0.0, 1.0], [0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [2.0, 1.0], [2.0, 0.0]]
    """
    cas = action_set if isinstance(action_set, CompiledActionSet) else compile_action_set(
        action_set, names
    )
    x = np.asarray(x, dtype=float).ravel()
    if x.shape != (cas.d,):
        raise ActionSetError(f"x must have {cas.d} values; got {x.shape[0]}")
    if not np.all(np.isfinite(x[cas.act_cols])):
        raise ActionSetError("x has missing or non-finite values in actionable features")
    actions = np.zeros((1, cas.d))
    complete = True
    for part in cas.parts:
        _, C = cas.part_actions(part, x[part.idx])
        complete &= part.discrete
        n0 = len(actions)
        actions = np.repeat(actions, len(C), axis=0)
        actions[:, part.idx] += np.tile(C, (n0, 1))
    return ReachableSet(x[None, :] + actions, actions, bool(complete))


def is_reachable(
    action_set: ActionSet | CompiledActionSet,
    x: np.ndarray,
    x_new: np.ndarray,
    names: FeatureSchema | Sequence[str] | None = None,
) -> bool:
    """Whether ``x_new`` is reachable from ``x`` under the action set (floats continuous).

    Checks that features outside every part are unchanged and, per part, that the implied
    own actions respect bounds, direction, step bounds and grids of discrete features, and
    that linked targets and constraints are satisfied.
    """
    cas = action_set if isinstance(action_set, CompiledActionSet) else compile_action_set(
        action_set, names
    )
    x = np.asarray(x, dtype=float).ravel()
    x_new = np.asarray(x_new, dtype=float).ravel()
    c = x_new - x
    free = np.setdiff1d(np.arange(cas.d), cas.act_cols)
    same = (x_new[free] == x[free]) | (np.isnan(x_new[free]) & np.isnan(x[free]))
    if not np.all(same):
        return False
    return all(
        bool(cas.part_contains(part, x[part.idx], c[part.idx])[0]) for part in cas.parts
    )


def model_matrix(model, X) -> np.ndarray:
    """``X`` as a float matrix in the model's schema order (frames converted by the model)."""
    import pandas as pd  # local: keeps this module's import light for the constraint classes

    if isinstance(X, pd.DataFrame):
        return model.matrix(X)
    M = np.asarray(X, dtype=float)
    if M.ndim != 2 or M.shape[1] != len(model.schema):
        raise ActionSetError(
            f"X must have shape (n, {len(model.schema)}) in schema order; got {M.shape}"
        )
    return M


def check_actionable_finite(cas: CompiledActionSet, M: np.ndarray) -> None:
    bad = ~np.all(np.isfinite(M[:, cas.act_cols]), axis=0)
    if np.any(bad):
        names = [cas.names[j] for j in cas.act_cols[bad]]
        raise ActionSetError(
            f"X has missing or non-finite values in actionable feature(s) {', '.join(names)}"
        )


def action_classes(
    cas: CompiledActionSet, part: Part, Xp: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Group people (rows of the part's values ``Xp``) whose feasible actions on ``part`` are
    the same: one representative row per class and each row's class.

    A discrete part whose only constraints are linkages sees a person only through the
    features' action bounds (grids, linked-target bounds and integrality follow from them), so
    people with equal bounds share their actions; other parts group equal values only.
    """
    if part.discrete and not part.constraints and len(Xp):
        bounds = [cas.elements[int(j)].action_bounds(Xp[:, li]) for li, j in enumerate(part.idx)]
        key = np.column_stack([b for pair in bounds for b in pair])
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        return Xp[first], np.asarray(inv).ravel()
    return unique_rows(Xp)


def value_box(cas: CompiledActionSet, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the range each feature can take over A(x): own action bounds plus the widest
    changes linked sources can force (a box containing every reachable point)."""
    lo, hi = X.copy(), X.copy()
    for part in cas.parts:
        for li, j in enumerate(part.idx):
            clo, chi = cas.elements[int(j)].action_bounds(X[:, j])
            for src, tgt, sc, _ in part.links:
                if tgt == li:
                    slo, shi = cas.elements[int(part.idx[src])].action_bounds(X[:, part.idx[src]])
                    clo = clo + np.minimum(sc * slo, sc * shi)
                    chi = chi + np.maximum(sc * slo, sc * shi)
            lo[:, j] += clo
            hi[:, j] += chi
    return lo, hi
