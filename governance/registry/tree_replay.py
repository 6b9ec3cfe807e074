"""Replay of a parsed tree ensemble on many perturbed samples of a few points, bit for bit.

The stability score (:mod:`governance.retraining.stability_score`) scores ``k`` perturbed samples of
every point. For tree ensembles (:mod:`governance.registry.trees`) the samples need not go
through ``predict_proba``: each point's box (the range of its samples) is walked down every
tree; most trees send the whole box to one leaf, and only below the first split the box
straddles are the samples routed node by node. Leaf values are then added tree by tree in the
model's order (boosting: zeros plus the baseline, then each stage; forests: from zero, then
divided by the number of trees) and passed through the model's own link, so the result equals
the model's scores bit for bit. The caller checks that before trusting it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from governance.registry.model import DecisionModel
from governance.registry.trees import TreeBound, column_maps, model_structure

REPLAY_SAMPLES = 32_000  # perturbed samples replayed at once through a parsed tree ensemble


@dataclass(frozen=True)
class _Forest:
    """Per-node arrays of a parsed tree ensemble for the replay (built once per parse)."""

    roots: np.ndarray  # root node id of every tree, in the model's order
    left: np.ndarray  # node -> child node ids, across all trees
    right: np.ndarray
    feat: np.ndarray  # node -> model input it splits on (0 at leaves)
    thr: np.ndarray  # node -> threshold, go left when input <= threshold (0 at leaves)
    is_leaf: np.ndarray
    value: np.ndarray  # leaf value (0 at split nodes)

    @classmethod
    def of(cls, bound: TreeBound) -> _Forest:
        hit = _FORESTS.get(bound)
        if hit is None:
            flat = bound._flat()
            n_nodes = flat["n_nodes"]
            leaf = np.concatenate([t[4] for t in bound.trees]).astype(np.float64)
            is_leaf = np.isfinite(leaf)
            left, right = np.zeros(n_nodes, dtype=np.int64), np.zeros(n_nodes, dtype=np.int64)
            feat, thr = np.zeros(n_nodes, dtype=np.int64), np.zeros(n_nodes)
            for ids, lft, rgt, f, t in flat["levels"]:
                left[ids], right[ids], feat[ids], thr[ids] = lft, rgt, f, t[:, 0]
            hit = cls(
                roots=np.asarray(flat["starts"], dtype=np.int64),
                left=left,
                right=right,
                feat=feat,
                thr=thr,
                is_leaf=is_leaf,
                value=np.where(is_leaf, leaf, 0.0),
            )
            _FORESTS[bound] = hit
        return hit


_FORESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class TreeReplay:
    """A parsed tree ensemble's scores of perturbed samples, in the model's own arithmetic.

    Each point's box (the range of its samples on every perturbed input, other inputs fixed at
    the point) is walked down every tree. Where the box falls on one side of a split, so do all
    its samples; from the first split the box straddles, the samples are routed node by node
    (as bit rows, one bit per sample). Most samples of a (tree, point) meet one leaf; the few
    that meet another are listed. Leaf values are then added tree by tree exactly as
    scikit-learn does (see the module docstring), so the result equals ``model.score`` on the
    samples bit for bit, which the caller checks before trusting it.
    """

    def __init__(self, bound: TreeBound, link: Callable | None, cols: np.ndarray) -> None:
        self.bound, self.link, self.forest = bound, link, _Forest.of(bound)
        # (perturbed column, model input, mean, scale) for the perturbed columns the model reads
        self.inputs = [
            (c, *bound.numeric[int(j)]) for c, j in enumerate(cols)
            if int(j) in bound.numeric
        ]
        self.slot = np.full(bound.n_inputs, -1, dtype=np.int64)
        for s, (_, o, _, _) in enumerate(self.inputs):
            self.slot[o] = s

    @classmethod
    def of(cls, model: DecisionModel, cols: np.ndarray) -> TreeReplay | None:
        """The replay of ``model`` for samples perturbed on schema columns ``cols``; None
        unless the model is a parsed tree ensemble whose link is known."""
        structure = model_structure(model)
        bound = structure.bound
        if structure.kind != "tree" or bound is None:
            return None
        link = None
        if bound.combine == "sum":
            try:
                final = column_maps(model).final
            except (AttributeError, KeyError, TypeError, ValueError):
                return None
            link = getattr(getattr(final, "_loss", None), "predict_proba", None)
            if link is None:
                return None
        return cls(bound, link, cols)

    def scores(self, rows: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Scores of samples ``V`` (shape (n, perturbed columns, k), from
        the stability noise, one column per perturbed column) of points ``rows``, shape (n, k)."""
        n, k = V.shape[0], V.shape[2]
        per = max(1, REPLAY_SAMPLES // max(k, 1))
        if n <= per:
            return self._scores(rows, V)
        out = np.empty((n, k))
        for a in range(0, n, per):
            out[a : a + per] = self._scores(rows[a : a + per], V[a : a + per])
        return out

    def _scores(self, rows: np.ndarray, V: np.ndarray) -> np.ndarray:
        n, k = V.shape[0], V.shape[2]
        n_trees = len(self.forest.roots)
        leaf = np.zeros((n_trees, n))  # the leaf most of a point's samples meet, per tree
        where, value = self._leaves(*self._inputs(rows, V), leaf)
        bounds = np.searchsorted(where // (n * k), np.arange(n_trees + 1))
        where %= n * k
        acc = np.zeros((n, k))
        if self.bound.combine == "sum":  # scikit-learn starts from zeros and adds the baseline
            acc += self.bound.base
        flat = acc.reshape(-1)
        for t in range(n_trees):  # tree by tree, as the model adds them
            a, b = bounds[t], bounds[t + 1]
            if a == b:
                acc += leaf[t][:, None]
            else:  # every sample adds its point's leaf but the listed ones, which add their own
                at = where[a:b]
                before = flat[at]
                acc += leaf[t][:, None]
                flat[at] = before + value[a:b]
        if self.bound.combine == "mean":
            return acc / n_trees
        return self.link(flat)[:, self.bound.fav].reshape(n, k)

    def _inputs(self, rows: np.ndarray, V: np.ndarray):
        """Perturbed model inputs, shape (points, inputs, samples), and each point's box,
        shape (inputs, points) for its low and high ends."""
        zlo, _ = self.bound.box(rows, rows)
        zhi = zlo.copy()
        if not self.inputs:
            return np.zeros((len(rows), 0, V.shape[2])), zlo.T, zhi.T
        c, o, mean, scale = (np.array(x) for x in zip(*self.inputs, strict=True))
        z = V if np.array_equal(c, np.arange(V.shape[1])) else V[:, c]
        if np.any(mean != 0) or np.any(scale != 1):  # (v - 0) / 1 is v: skip the identity
            z = (z - mean[:, None]) / scale[:, None]
        if self.bound.float32:  # scikit-learn trees read float32 inputs
            z = z.astype(np.float32).astype(np.float64)
        zlo[:, o], zhi[:, o] = z.min(axis=2), z.max(axis=2)
        return z, np.ascontiguousarray(zlo.T), np.ascontiguousarray(zhi.T)

    def _leaves(self, Z, lo, hi, leaf):
        """Fill ``leaf[tree, point]`` with the leaf most of the point's samples meet; return
        the samples that meet another one, as ``(tree * n + point) * k + sample`` (sorted by
        tree), and the value of their leaf."""
        f = self.forest
        n, k = Z.shape[0], Z.shape[2]
        node, pt, R = self._walk(Z, lo, hi, leaf)
        key = np.searchsorted(f.roots, node, side="right") - 1  # tree
        key = key * n + pt
        met = np.bitwise_count(R).sum(axis=1, dtype=np.int64)
        order = np.lexsort((-met, key))  # by (tree, point), the most met leaf first
        key, node = key[order], node[order]
        first = np.concatenate([[True], key[1:] != key[:-1]]) if len(key) else key.astype(bool)
        leaf.reshape(-1)[key[first]] = f.value[node[first]]
        other = np.flatnonzero(~first)
        at = np.flatnonzero(np.unpackbits(R[order[other]], axis=1, count=k).view(bool))
        row = other[at // k]
        return key[row] * k + at % k, f.value[node[row]]

    def _walk(self, Z, lo, hi, leaf):
        """Walk every point's box down every tree. Trees the box crosses in one path give
        their leaf to ``leaf``; returns the leaves met by samples below a straddled split:
        leaf node, point, and which of the point's samples meet it (rows of packed bits)."""
        f = self.forest
        n, k = Z.shape[0], Z.shape[2]
        rows = _Rows((k + 7) // 8)
        full = rows.add(np.packbits(np.ones((1, k), dtype=bool), axis=1))[0]
        node = np.repeat(f.roots, n)
        pt = np.tile(np.arange(n), len(f.roots))
        row = np.full(len(node), -1)  # -1: the whole box, still on one path
        out = []
        while len(node):
            end = f.is_leaf[node]
            if end.any():
                boxed = end & (row < 0)
                leaf[np.searchsorted(f.roots, node[boxed], side="right") - 1, pt[boxed]] = (
                    f.value[node[boxed]])
                routed = end & (row >= 0)
                out.append((node[routed], pt[routed], row[routed]))
                node, pt, row = node[~end], pt[~end], row[~end]
            fn, tn = f.feat[node], f.thr[node]
            go_left = lo[fn, pt] <= tn
            st = go_left & (hi[fn, pt] > tn)
            c = np.flatnonzero(~st)  # the whole box goes one way: so do its samples
            c_child = np.where(go_left[c], f.left[node[c]], f.right[node[c]])
            s = np.flatnonzero(st)
            who, wpt = node[s], pt[s]
            go = np.packbits(Z[wpt, self.slot[fn[s]]] <= tn[s, None], axis=1)
            R = rows.rows[np.where(row[s] < 0, full, row[s])]
            R = np.concatenate([R & go, R & ~go])
            keep = R.any(axis=1)  # some sample gets there
            node = np.concatenate([c_child, np.concatenate([f.left[who], f.right[who]])[keep]])
            pt = np.concatenate([pt[c], np.concatenate([wpt, wpt])[keep]])
            row = np.concatenate([row[c], rows.add(R[keep])])
        if not out:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), rows.rows[:0]
        node, pt, row = (np.concatenate(x) for x in zip(*out, strict=True))
        return node, pt, rows.rows[row]


class _Rows:
    """A growing stack of byte rows of one width, addressed by index."""

    def __init__(self, width: int) -> None:
        self.rows = np.empty((256, width), dtype=np.uint8)
        self.n = 0

    def add(self, R: np.ndarray) -> np.ndarray:
        """Append ``R``; return the indices of its rows."""
        if self.n + len(R) > len(self.rows):
            grown = np.empty((2 * (self.n + len(R)), self.rows.shape[1]), dtype=np.uint8)
            grown[: self.n] = self.rows[: self.n]
            self.rows = grown
        self.rows[self.n : self.n + len(R)] = R
        self.n += len(R)
        return np.arange(self.n - len(R), self.n)
