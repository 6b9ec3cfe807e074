"""Candidate actions per part of an action set, cheapest first, and their exact top-M merge.

Each part contributes, per person, a list of joint actions with their additive costs; the
search in :mod:`governance.recourse.search` combines the lists in non-decreasing total cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from governance.recourse.costs import Cost
from governance.recourse.reachable import (
    CompiledActionSet,
    Part,
    action_classes,
)
from governance.registry.trees import Cells, ModelStructure


# ------------------------------------------------------------------------------------------
# candidate lists per part
# ------------------------------------------------------------------------------------------
@dataclass
class Candidates:
    """Sorted candidate actions of one part for every distinct value of the part's features."""

    part: Part
    sub: np.ndarray  # person -> distinct part value
    offsets: np.ndarray  # distinct value -> slice of the concatenated lists
    C: np.ndarray  # (total, p) total changes, cheapest first per distinct value
    costs: np.ndarray  # (total,)
    exact: np.ndarray  # per distinct value: the list covers every reachable prediction
    gain: np.ndarray | None = None  # linear models: logit gain per candidate

    def lengths(self, persons: np.ndarray) -> np.ndarray:
        s = self.sub[persons]
        return self.offsets[s + 1] - self.offsets[s]

    def padded_costs(self, persons: np.ndarray, width: int) -> np.ndarray:
        s = self.sub[persons]
        lens = self.offsets[s + 1] - self.offsets[s]
        cols = np.arange(width)
        idx = self.offsets[s][:, None] + cols[None, :]
        inside = cols[None, :] < lens[:, None]
        out = np.full((len(persons), width), np.inf)
        out[inside] = self.costs[idx[inside]]
        return out


def _tree_candidates(
    cas: CompiledActionSet, cells: Cells, j: int, xs: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One candidate action per threshold cell reachable from each value of ``xs``.

    Per cell: the own-grid value closest to ``x``, else (float features) the closest value
    just inside the cell's edge. The null action is always kept (its cell holds ``x``).

    Returns
    -------
    owner : ndarray of int
        Index into ``xs`` per action, grouped by owner, cells in increasing order.
    actions : ndarray of float
    exact : ndarray of bool, shape (len(xs),)
        False where some cell between two candidates was missed.
    """
    xs = np.asarray(xs, dtype=float)
    n = len(xs)
    g_owner, grid = cas.own_grids(j, xs)
    on = xs[g_owner] + grid
    first = np.searchsorted(g_owner, np.arange(n), "left")  # grids are sorted per owner
    lo, hi = on[first], on[np.searchsorted(g_owner, np.arange(n), "right") - 1]
    discrete = cas.elements[j].discrete
    if discrete:
        owner, pool, on_grid = g_owner, on, np.ones(len(on), dtype=bool)
    else:  # the edges of every cell inside [lo, hi], beside the grid
        edges = np.unique(cells.edges())
        a, b = np.searchsorted(edges, lo, "left"), np.searchsorted(edges, hi, "right")
        m = b - a
        e_owner = np.repeat(np.arange(n), m)
        e_idx = np.repeat(a, m) + np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)
        owner = np.concatenate([g_owner, e_owner])
        pool = np.concatenate([on, edges[e_idx]])
        on_grid = np.concatenate([np.ones(len(on), bool), np.zeros(len(e_idx), bool)])
        # equal values are one: on the grid if any copy is
        order = np.lexsort((~on_grid, pool, owner))
        owner, pool, on_grid = owner[order], pool[order], on_grid[order]
        new = np.concatenate([[True], (owner[1:] != owner[:-1]) | (pool[1:] != pool[:-1])])
        owner, pool, on_grid = owner[new], pool[new], on_grid[new]
    ids = cells.ids(pool)
    same = np.concatenate([[False], owner[1:] == owner[:-1]])
    gap = same & (np.diff(ids, prepend=0) > 1)  # monotone ids: a gap would be a missed cell
    exact = np.ones(n, dtype=bool)
    exact[owner[gap]] = discrete
    # per cell: the grid value closest to x, else the closest edge value
    rank = np.lexsort((np.abs(pool - xs[owner]), ~on_grid, ids, owner))
    o, i = owner[rank], ids[rank]
    first = rank[np.concatenate([[True], (o[1:] != o[:-1]) | (i[1:] != i[:-1])])]
    owner, chosen = owner[first], pool[first]
    actions = chosen - xs[owner]
    actions[chosen == xs[owner]] = 0.0
    has_null = np.zeros(n, dtype=bool)
    has_null[owner[actions == 0]] = True
    if not has_null.all():  # the null action must stay available (its cell holds x)
        idx = np.flatnonzero(~has_null[owner])
        order = idx[np.lexsort((np.abs(actions[idx]), owner[idx]))]
        near = order[np.concatenate([[True], owner[order][1:] != owner[order][:-1]])]
        actions[near] = 0.0
    return owner, actions, exact


def build_candidates(
    cas: CompiledActionSet,
    cost: Cost,
    structure: ModelStructure,
    part: Part,
    U: np.ndarray,
) -> Candidates:
    """Every person's candidate list for ``part``, cheapest first, the null action first."""
    n = len(U)
    Xp = U[:, part.idx]
    j0 = int(part.idx[0])
    if part.size == 1 and structure.kind == "tree" and j0 in structure.cells:
        owner, a, exact = _tree_candidates(cas, structure.cells[j0], j0, Xp[:, 0])
        C = a[:, None]
    else:  # the same actions for every person of a class
        reps, cls = action_classes(cas, part, Xp)
        lists = [cas.part_actions(part, xp)[1] for xp in reps]
        lens = np.array([len(c) for c in lists], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)])
        owner = np.repeat(np.arange(n), lens[cls])
        pos = np.repeat(offsets[cls], lens[cls]) + np.arange(int(lens[cls].sum())) - np.repeat(
            np.cumsum(lens[cls]) - lens[cls], lens[cls])
        C = np.concatenate(lists)[pos]
        exact = np.full(n, part.discrete or (structure.kind == "linear" and part.size == 1))
    c = np.zeros(len(C))
    for li, j in enumerate(part.idx):
        x = Xp[owner, li]
        c += cost.feature_cost(cas.names[int(j)], x, x + C[:, li])
    null = np.all(C == 0, axis=1)
    order = np.lexsort((np.arange(len(C)), ~null, c, owner))
    owner, C, c = owner[order], C[order], c[order]
    counts = np.bincount(owner, minlength=n)
    return Candidates(
        part=part,
        sub=np.arange(n),
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        C=C,
        costs=c,
        exact=exact,
        gain=structure.gains(part.idx, Xp[owner], C) if structure.kind == "linear" else None,
    )


# ------------------------------------------------------------------------------------------
# exact top-M merge
# ------------------------------------------------------------------------------------------
def _pairs(cur: int, width: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), i < cur, j < width, with (i + 1)(j + 1) <= budget, lexicographic."""
    counts = np.minimum(width, budget // (np.arange(cur) + 1))
    counts = counts[counts > 0]
    pi = np.repeat(np.arange(len(counts)), counts)
    pj = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return pi, pj


def top_combinations(
    cands: list[Candidates], persons: np.ndarray, budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``budget`` cheapest combinations per person, in a fixed total order.

    Returns
    -------
    costs : ndarray of shape (n_persons, m)
        Non-decreasing per row; ``inf`` pads rows with fewer combinations.
    index : ndarray of shape (n_persons, m, n_parts)
        Position of each part's candidate in that person's list.
    """
    G = len(persons)
    P = np.zeros((G, 1))
    rows = np.arange(G)[:, None]
    steps = []  # per part: (prefix it extends, own position), both (G, m)
    for cand in cands:
        width = int(min(cand.lengths(persons).max(), budget))
        costs = cand.padded_costs(persons, width)
        pi, pj = _pairs(P.shape[1], width, budget)
        S = P[:, pi] + costs[:, pj]
        order = np.argsort(S, axis=1, kind="stable")[:, :budget]
        P = np.take_along_axis(S, order, axis=1)
        steps.append((pi[order], pj[order]))
    T = np.zeros((G, P.shape[1], len(cands)), dtype=np.int32)
    at = np.broadcast_to(np.arange(P.shape[1]), P.shape)
    for k in range(len(cands) - 1, -1, -1):  # follow each combination back to the first part
        prefix, own = steps[k]
        T[:, :, k] = own[rows, at]
        at = prefix[rows, at]
    return P, T
