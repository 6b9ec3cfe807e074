"""Structure of fitted models that exact searches rely on: tree ensembles, logistic regression.

Parsed once per fitted estimator (:func:`model_structure`): the tree ensembles
:mod:`governance.registry.forests` reads (scikit-learn decision trees, random and extra forests,
gradient boosting, histogram gradient boosting with numeric and categorical splits, XGBoost and
LightGBM) and logistic regression, bare or after a ``ColumnTransformer`` of passthrough,
``StandardScaler``, ``OneHotEncoder`` and ``OrdinalEncoder`` columns.

- :class:`Cells`: the split thresholds of a tree model on one feature. The prediction is
  constant between consecutive thresholds, so one value per cell covers every prediction a
  feature can reach (placement checked in the model's own arithmetic, float32 included).
- :class:`TreeBound`: a sound upper bound on P(favourable) over a box of inputs, by walking the
  box down every tree, and a small branch and bound on it. A bound below the threshold over a
  box that contains every reachable point proves a prediction fixed.
- :class:`CellKeys`: threshold-cell keys of candidate values, so that candidates the model
  cannot tell apart are scored once.
- :class:`ModelStructure`: which of these applies, and for logistic regression the logit
  weight of every feature (the score is monotone in each feature and additive over parts).

Users of these facts (the recourse search, responsiveness, the stability replay in
:mod:`governance.registry.tree_replay`) trust a parsed ensemble only where it reproduces the
model's scores.

The module reads best whole (about 710 lines): the threshold cells, the bound and the cell
keys are three views of one flattened forest and its sorted thresholds.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np

from governance.arrays import any_of_groups, first_of_groups
from governance.registry.forests import (
    ColumnMaps,
    ParsedForest,
    column_maps,
    parse_forest,
)
from governance.registry.model import DecisionModel

_REACH_CELLS = 8_000_000  # (box, tree node) flags held at once by a walk of the forest


# ------------------------------------------------------------------------------------------
# model structure: what makes a complete search possible
# ------------------------------------------------------------------------------------------
@dataclass
class Cells:
    """Split thresholds of a tree model on one original feature, in its transformed space."""

    thresholds: np.ndarray
    mean: float
    scale: float
    float32: bool
    _edges: np.ndarray | None = field(default=None, repr=False)

    def ids(self, values: np.ndarray) -> np.ndarray:
        z = (np.asarray(values, dtype=float) - self.mean) / self.scale
        if self.float32:  # scikit-learn trees compare float32 inputs with float64 thresholds
            z = z.astype(np.float32).astype(np.float64)
        return np.searchsorted(self.thresholds, z, side="left")

    def edges(self) -> np.ndarray:
        """Values just below and just above every threshold, in the original scale."""
        if self._edges is None:
            self._edges = self._compute_edges()
        return self._edges

    def _compute_edges(self) -> np.ndarray:
        t = self.thresholds
        if self.float32:
            lo = t.astype(np.float32)
            lo = np.where(lo.astype(np.float64) > t, np.nextafter(lo, np.float32(-np.inf)), lo)
            hi = np.nextafter(lo, np.float32(np.inf))
            z = np.concatenate([lo.astype(np.float64), hi.astype(np.float64)])
            v = z * self.scale + self.mean
        else:
            v0 = t * self.scale + self.mean
            delta = 1e-9 * np.maximum(1.0, np.abs(v0))
            v = np.concatenate([v0 - delta, v0 + delta, v0])
        return v


@dataclass
class ModelStructure:
    """Per-column facts about the model used to certify "fixed" verdicts."""

    kind: str = "none"  # "tree", "linear" or "none"
    cells: dict[int, Cells] = field(default_factory=dict)
    numeric_w: dict[int, float] = field(default_factory=dict)
    category_w: dict[int, np.ndarray] = field(default_factory=dict)
    intercept: float = 0.0
    bound: TreeBound | None = None

    def gains(self, cols: np.ndarray, Xp: np.ndarray, C: np.ndarray) -> np.ndarray:
        """Linear models: logit change of each candidate ``C`` (changes on the schema columns
        ``cols``, one row per candidate) at its owner's values ``Xp`` of those columns."""
        g = np.zeros(len(C))
        for li, j in enumerate(cols):
            j = int(j)
            if j in self.numeric_w:
                g += self.numeric_w[j] * C[:, li]
            elif j in self.category_w:
                w = self.category_w[j]
                old = Xp[:, li].astype(np.int64)
                g += w[(Xp[:, li] + C[:, li]).astype(np.int64)] - w[old]
        return g

    def logit(self, U: np.ndarray) -> np.ndarray:
        z = np.full(len(U), self.intercept)
        for j, w in self.numeric_w.items():
            z += w * U[:, j]
        for j, w in self.category_w.items():
            z += w[U[:, j].astype(np.int64)]
        return z


class TreeBound:
    """Upper bound on P(favourable) of a tree ensemble over a box of inputs (sound, cheap).

    Each tree is walked with a box instead of a point: a split sends the box left if its low
    end satisfies ``z <= t`` and right if its high end does not, so every leaf the box can
    reach is marked. Additive ensembles (gradient boosting) bound the raw score by the sum of
    per-tree extremes; averaging ensembles (forests, a single tree) bound the probability by
    the mean of per-tree maxima. Since the box contains every point of ``A(x)``, a bound below
    the threshold proves the person is fixed.
    """

    def __init__(self, trees, combine, base, sign, fav, n_inputs, float32, numeric, category,
                 ordinal=None, tol=1e-9):
        self.trees = trees  # list of (left, right, feature, threshold, leaf_value)
        self.combine = combine  # "sum" (raw score, sigmoid link) or "mean" (probabilities)
        self.base, self.sign, self.fav = base, sign, fav
        self.n_inputs, self.float32 = n_inputs, float32
        self.numeric, self.category = numeric, category
        self.ordinal = ordinal or {}  # schema column -> (input, input value per code)
        self.tol = tol  # slack for arithmetic that is not the model's own
        self._thr: dict[int, np.ndarray] | None = None
        self._level_cache: dict[int, list[np.ndarray]] = {}
        self._flat_cache: dict | None = None

    def _levels(self, k: int) -> list[np.ndarray]:
        if k not in self._level_cache:
            left, right, _, _, leaf = self.trees[k]
            self._level_cache[k] = _split_levels(left, right, np.isfinite(leaf))
        return self._level_cache[k]

    @classmethod
    def build(
        cls, model: DecisionModel, maps: ColumnMaps, parsed: ParsedForest
    ) -> TreeBound | None:
        classes = list(maps.final.classes_)
        if len(classes) != 2 or model.favourable_class not in classes or parsed.base is None:
            return None
        fav = classes.index(model.favourable_class)
        sign = 1.0 if fav == 1 or parsed.combine == "mean" else -1.0
        return cls(parsed.trees, parsed.combine, parsed.base, sign, fav, maps.n_inputs,
                   parsed.float32, maps.numeric, maps.category, maps.ordinal, parsed.tol)

    def thresholds(self) -> dict[int, np.ndarray]:
        """Sorted split thresholds per input column, over all trees."""
        if self._thr is None:
            acc: dict[int, list[np.ndarray]] = {}
            for _, _, feat, thr, leaf in self.trees:
                inner = ~np.isfinite(leaf)
                for f in np.unique(feat[inner]):
                    acc.setdefault(int(f), []).append(thr[inner & (feat == f)])
            self._thr = {f: np.unique(np.concatenate(v)) for f, v in acc.items()}
        return self._thr

    def _above(self, t: np.ndarray) -> np.ndarray:
        """Smallest model input strictly above each threshold (float32 for sklearn trees)."""
        if not self.float32:
            return np.nextafter(t, np.inf)
        c = t.astype(np.float32)
        c = np.where(c.astype(np.float64) <= t, np.nextafter(c, np.float32(np.inf)), c)
        return c.astype(np.float64)

    def certify(
        self, zlo: np.ndarray, zhi: np.ndarray, threshold: float, *, max_boxes: int = 128,
        max_rounds: int = 12,
    ) -> np.ndarray:
        """Branch and bound: True where every sub-box of a person's box stays below threshold.

        Boxes whose bound reaches the threshold are split at the median split threshold of
        the input with most thresholds inside; a person is given up (False) when a box can
        no longer be split, or after ``max_boxes`` boxes or ``max_rounds`` rounds.
        """
        thr = self.thresholds()
        dims = sorted(thr)
        n = len(zlo)
        owner = np.arange(n)
        lo, hi = zlo.copy(), zhi.copy()
        spent = np.zeros(n, dtype=np.int64)
        failed = np.zeros(n, dtype=bool)
        for _ in range(max_rounds):
            if len(owner) == 0:
                break
            open_ = self.upper(lo, hi) >= threshold - self.tol
            spent += np.bincount(owner, minlength=n)
            owner, lo, hi = owner[open_], lo[open_], hi[open_]
            if len(owner) == 0:
                break
            counts = np.zeros((len(owner), len(dims)), dtype=np.int64)
            first = np.zeros_like(counts)
            for k, f in enumerate(dims):
                a = np.searchsorted(thr[f], lo[:, f], side="left")
                b = np.searchsorted(thr[f], hi[:, f], side="left")
                counts[:, k], first[:, k] = b - a, a
            best = np.argmax(counts, axis=1)
            stuck = counts[np.arange(len(owner)), best] == 0
            failed[owner[stuck]] = True
            failed |= spent >= max_boxes
            go = ~failed[owner]
            owner, lo, hi = owner[go], lo[go], hi[go]
            best, counts, first = best[go], counts[go], first[go]
            if len(owner) == 0:
                break
            rows = np.arange(len(owner))
            f = np.asarray(dims)[best]
            mid = first[rows, best] + counts[rows, best] // 2
            t = np.array([thr[int(d)][i] for d, i in zip(f, mid, strict=True)])
            left_hi, right_lo = hi.copy(), lo.copy()
            left_hi[rows, f] = t
            right_lo[rows, f] = self._above(t)
            owner = np.concatenate([owner, owner])
            lo = np.concatenate([lo, right_lo])
            hi = np.concatenate([left_hi, hi])
        failed[owner] = True  # boxes still open when the rounds ran out
        return ~failed

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Box in the estimator's input space from value ranges ``[lo, hi]`` (schema order)."""
        n = len(lo)
        zlo, zhi = np.zeros((n, self.n_inputs)), np.zeros((n, self.n_inputs))
        for j, (o, mean, scale) in self.numeric.items():
            a, b = (lo[:, j] - mean) / scale, (hi[:, j] - mean) / scale
            if self.float32:
                a, b = a.astype(np.float32), b.astype(np.float32)
            zlo[:, o], zhi[:, o] = a, b
        for j, (sl, cats) in self.category.items():
            for k in range(len(cats)):
                zlo[:, sl.start + k] = (lo[:, j] == k) & (hi[:, j] == k)
                zhi[:, sl.start + k] = (lo[:, j] <= k) & (hi[:, j] >= k)
        for j, (o, codes) in self.ordinal.items():
            k = np.arange(len(codes))
            inside = (lo[:, j, None] <= k) & (hi[:, j, None] >= k)
            zlo[:, o] = np.where(inside, codes, np.inf).min(axis=1)
            zhi[:, o] = np.where(inside, codes, -np.inf).max(axis=1)
        return zlo, zhi

    # -- the forest as one array of nodes, walked depth by depth across all trees ------------
    # Node flags are held node-major, (n_nodes, n_boxes), so every step reads whole rows.
    def _flat(self) -> dict:
        if self._flat_cache is None:
            sizes = [len(t[0]) for t in self.trees]
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
            left = np.concatenate([t[0] + o for t, o in zip(self.trees, starts, strict=True)])
            right = np.concatenate([t[1] + o for t, o in zip(self.trees, starts, strict=True)])
            feat = np.concatenate([t[2] for t in self.trees]).astype(np.int64)
            thr = np.concatenate([t[3] for t in self.trees]).astype(np.float64)
            leaf = np.concatenate([t[4] for t in self.trees]).astype(np.float64)
            depth_ids: list[list[np.ndarray]] = []
            for k, o in enumerate(starts):
                for dpt, ids in enumerate(self._levels(k)):
                    if dpt == len(depth_ids):
                        depth_ids.append([])
                    depth_ids[dpt].append(ids + o)
            levels = []
            for ids in (np.concatenate(x).astype(np.int64) for x in depth_ids):
                levels.append((ids, left[ids], right[ids], feat[ids], thr[ids][:, None]))
            inner = np.flatnonzero(~np.isfinite(leaf))
            allthr = self.thresholds()
            splits = {}
            for f in np.unique(feat[inner]):
                nodes = inner[feat[inner] == f]
                pos = np.searchsorted(allthr[int(f)], thr[nodes])
                order = np.argsort(pos, kind="stable")
                nodes, pos = nodes[order], pos[order]
                runs = np.flatnonzero(np.concatenate([[True], pos[1:] != pos[:-1]]))
                splits[int(f)] = (nodes, runs, pos[runs])
            # leaves of each tree, best first (largest value, or smallest where the raw score
            # counts against the favourable class), padded with the always-reached root
            best_low = self.combine == "sum" and self.sign < 0
            per_tree = [np.flatnonzero(np.isfinite(t[4])) for t in self.trees]
            width = max(len(x) for x in per_tree) + 1  # at least one pad: none reached -> NaN
            ranked = np.zeros((len(self.trees), width), dtype=np.int64)
            value = np.full((len(self.trees), width), np.nan)
            for k, (ids, o) in enumerate(zip(per_tree, starts, strict=True)):
                v = leaf[ids + o]
                order = np.argsort(v if best_low else -v, kind="stable")
                ranked[k, : len(ids)] = ids[order] + o
                ranked[k, len(ids) :] = o
                value[k, : len(ids)] = v[order]
            self._flat_cache = dict(
                starts=starts, levels=levels, splits=splits, n_nodes=int(sum(sizes)),
                ranked=ranked, value=value,
            )
        return self._flat_cache

    def _reach(self, zlo: np.ndarray, zhi: np.ndarray) -> np.ndarray:
        """Nodes of every tree that some input of each box reaches, (n_nodes, n_boxes)."""
        flat = self._flat()
        lo, hi = np.ascontiguousarray(zlo.T), np.ascontiguousarray(zhi.T)
        reach = np.zeros((flat["n_nodes"], len(zlo)), dtype=bool)
        reach[flat["starts"]] = True
        for ids, left, right, f, t in flat["levels"]:  # split nodes of one depth, all trees
            r = reach[ids]
            reach[left] = r & (lo[f] <= t)
            reach[right] = r & (hi[f] > t)
        return reach

    def _chunks(self, n: int) -> list[slice]:
        step = max(1, _REACH_CELLS // max(self._flat()["n_nodes"], 1))
        return [slice(i, min(i + step, n)) for i in range(0, n, step)]

    def cell_counts(
        self, zlo: np.ndarray, zhi: np.ndarray, inputs: list[int]
    ) -> dict[int, np.ndarray]:
        """Per input column and box: how many of the thresholds that split nodes the box can
        reach use lie below each position of the column's sorted threshold list.

        Returns ``{input: counts}`` with ``counts`` of shape (n_boxes, n_thresholds + 1):
        ``counts[b, searchsorted(thresholds()[input], z)]`` is the cell of value ``z`` among
        the thresholds box ``b`` can meet. Two inputs of one box that differ only in columns
        whose cells agree take the same branch at every node the box reaches (a point only
        visits reachable nodes), so every tree gives them the same leaf: the model's
        prediction is identical. Missing values are treated as unknown (both branches).
        """
        splits = self._flat()["splits"]
        zlo = np.where(np.isnan(zlo), -np.inf, zlo)
        zhi = np.where(np.isnan(zhi), np.inf, zhi)
        marks = self._marks(len(zlo), inputs)
        for sl in self._chunks(len(zlo)):
            reach = self._reach(zlo[sl], zhi[sl])
            for o, m in marks.items():
                nodes, runs, pos = splits[o]
                m[sl, pos] = np.logical_or.reduceat(reach[nodes], runs, axis=0).T
        return self._counts(len(zlo), inputs, marks)

    def single_cell_counts(
        self, zx: np.ndarray, zlo: np.ndarray, zhi: np.ndarray, inputs: list[int]
    ) -> dict[int, np.ndarray]:
        """:meth:`cell_counts` for boxes that free one input each, in one walk for all.

        For input ``o`` and row ``i`` the box is the point ``zx[i]`` with input ``o`` ranging
        over ``[zlo[i, o], zhi[i, o]]``. Each node records the single input on which a path to
        it must leave the point (none, one, or more than one or impossible), so one walk of
        the point decides reachability for every single-input box at once, exactly as
        walking each box would.
        """
        flat = self._flat()
        splits = flat["splits"]
        free = np.zeros(self.n_inputs, dtype=bool)
        free[list(inputs)] = True
        marks = self._marks(len(zx), inputs)
        none, gone = np.int16(-1), np.int16(-2)  # on the point's own path / unreachable
        for sl in self._chunks(len(zx)):
            x = np.ascontiguousarray(zx[sl].T)
            lo = np.ascontiguousarray(zlo[sl].T)
            hi = np.ascontiguousarray(zhi[sl].T)
            code = np.full((flat["n_nodes"], x.shape[1]), gone, dtype=np.int16)
            code[flat["starts"]] = none
            for ids, left, right, f, t in flat["levels"]:
                c = code[ids]
                xf = x[f]
                unknown = np.isnan(xf)  # missing values may go either way
                f16 = f.astype(np.int16)[:, None]
                moved = np.where((c == none) | (c == f16), f16, gone)
                can_left = free[f][:, None] & (lo[f] <= t)
                can_right = free[f][:, None] & (hi[f] > t)
                code[left] = np.where((xf <= t) | unknown, c, np.where(can_left, moved, gone))
                code[right] = np.where((xf > t) | unknown, c, np.where(can_right, moved, gone))
            for o, m in marks.items():
                nodes, runs, pos = splits[o]
                cn = code[nodes]
                hit = (cn == none) | (cn == o)
                m[sl, pos] = np.logical_or.reduceat(hit, runs, axis=0).T
        return self._counts(len(zx), inputs, marks)

    def _marks(self, n: int, inputs: list[int]) -> dict[int, np.ndarray]:
        thr, splits = self.thresholds(), self._flat()["splits"]
        return {o: np.zeros((n, len(thr[o])), dtype=bool) for o in set(inputs) if o in splits}

    @staticmethod
    def _counts(n: int, inputs: list[int], marks: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        out = {}
        for o in set(inputs):
            m = marks[o] if o in marks else np.zeros((n, 0), dtype=bool)
            out[o] = np.concatenate(
                [np.zeros((n, 1), dtype=np.int32), np.cumsum(m, axis=1, dtype=np.int32)], axis=1
            )
        return out

    def matches(self, X: np.ndarray, scores: np.ndarray) -> bool:
        """Whether the parsed trees reproduce the model's scores at the finite rows of ``X``."""
        ok = np.all(np.isfinite(X), axis=1)
        if not ok.any():
            return False
        try:
            mine = self.upper(*self.box(X[ok], X[ok]))
        except (IndexError, ValueError):
            return False
        return bool(np.allclose(mine, scores[ok], rtol=1e-6, atol=1e-6))

    def upper(self, zlo: np.ndarray, zhi: np.ndarray) -> np.ndarray:
        """Largest P(favourable) the model can give any input in the box (NaN where a box
        reaches no leaf of some tree, as with missing values)."""
        flat = self._flat()
        ranked, value = flat["ranked"], flat["value"]
        trees = np.arange(len(ranked))[:, None]
        total = np.zeros(len(zlo))
        for sl in self._chunks(len(zlo)):
            reach = self._reach(zlo[sl], zhi[sl])
            best = reach[ranked].argmax(axis=1)  # first reachable leaf in best-first order
            per_tree = value[trees, best]
            acc = np.zeros(per_tree.shape[1])
            for k in range(len(per_tree)):  # tree by tree, as the model adds them
                acc += per_tree[k]
            total[sl] = acc
        if self.combine == "mean":
            return total / len(self.trees)
        p1 = 1.0 / (1.0 + np.exp(-(self.base + total)))
        return p1 if self.sign > 0 else 1.0 - p1


def _split_levels(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> list[np.ndarray]:
    """Split-node ids grouped by depth, root first (each child has exactly one parent)."""
    out, level = [], np.array([0])
    while level.size:
        inner = level[~is_leaf[level]]
        if inner.size:
            out.append(inner)
        level = np.concatenate([left[inner], right[inner]]).astype(np.int64)
    return out


_STRUCTURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


_FITTED = ("_predictors", "estimators_", "tree_", "coef_", "intercept_", "classes_",
           "transformers_", "mean_", "scale_", "categories_", "_baseline_prediction")


def _fitted_state(est) -> list:
    """The objects that hold an estimator's fitted state (refitting replaces them). The
    estimator itself is left out: the cache entry must not keep its own key alive."""
    from sklearn.pipeline import Pipeline

    parts = [s for _, s in est.steps] if isinstance(est, Pipeline) else [est]
    out: list = [p for p in parts if p is not est]
    for p in parts:
        out += [getattr(p, a, None) for a in _FITTED]
        for t in getattr(p, "transformers_", None) or []:
            out += [t[1]] + [getattr(t[1], a, None) for a in _FITTED]
    return out


def model_structure(model: DecisionModel) -> ModelStructure:
    """Recognise tree ensembles and logistic regression behind the model, else "none".

    Parsed once per fitted estimator: kept while the objects holding its fitted state are the
    same ones (they are held, so their identity cannot be reused), with the same schema and
    favourable class.
    """
    key = (_fitted_state(model.estimator), model.schema, model.favourable_class)
    try:
        hit = _STRUCTURES.get(model.estimator)
    except TypeError:  # not weak-referenceable: parse every time
        return _parse_structure(model)
    if hit is not None and len(hit[0][0]) == len(key[0]) and all(
        a is b for a, b in zip(hit[0][0], key[0], strict=True)
    ) and hit[0][1] == key[1] and hit[0][2] == key[2]:
        return hit[1]
    found = _parse_structure(model)
    _STRUCTURES[model.estimator] = (key, found)
    return found


def _parse_structure(model: DecisionModel) -> ModelStructure:
    from sklearn.linear_model import LogisticRegression

    try:
        maps = column_maps(model)
    except (AttributeError, KeyError, TypeError, ValueError):
        return ModelStructure()
    if maps is None:
        return ModelStructure()
    final = maps.final
    if isinstance(final, LogisticRegression):
        classes = list(final.classes_)
        if len(classes) != 2 or final.coef_.shape[0] != 1:
            return ModelStructure()
        sign = 1.0 if model.favourable_class == classes[1] else -1.0
        coef = sign * final.coef_[0]
        s = ModelStructure("linear", intercept=sign * float(final.intercept_[0]))
        for j, (o, mean, scale) in maps.numeric.items():
            s.numeric_w[j] = float(coef[o] / scale)
            s.intercept -= float(coef[o] * mean / scale)
        for j, (sl, cats) in maps.category.items():
            if tuple(cats) != tuple(model.schema.features[j].categories or ()):
                return ModelStructure()
            s.category_w[j] = coef[sl].astype(float)
        for j, (o, codes) in maps.ordinal.items():
            s.category_w[j] = float(coef[o]) * np.asarray(codes, dtype=float)
        return s
    classes = list(getattr(final, "classes_", []))
    fav = classes.index(model.favourable_class) if model.favourable_class in classes else 1
    try:
        parsed = parse_forest(final, maps, fav)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return ModelStructure()
    if isinstance(parsed, str):
        return ModelStructure()
    bound = TreeBound.build(model, maps, parsed)
    s = ModelStructure("tree", bound=bound)
    per_input: dict[int, list[np.ndarray]] = {}
    for _, _, feat, thr, leaf in parsed.trees:
        inner = ~np.isfinite(leaf)
        for f in np.unique(feat[inner]):
            per_input.setdefault(int(f), []).append(thr[inner & (feat == f)])
    for j, (o, mean, scale) in maps.numeric.items():
        parts = per_input.get(o, [])
        t = np.unique(np.concatenate(parts)) if parts else np.zeros(0)
        s.cells[j] = Cells(t, mean, scale, parsed.float32)
    return s


class CellKeys:
    """Threshold-cell keys of candidate values, one box of inputs per person (tree ensembles).

    Two candidates of one person that differ only in keyed columns, lie in the person's box and
    share their key take the same path in every tree (see :meth:`TreeBound.cell_counts`), so
    the model gives them bit-identical scores. Category codes are their own key, columns the
    model does not read get a constant key, other unkeyed columns are keyed by value, and
    candidates outside the box are never grouped with another.

    Use :meth:`joint` (the box frees every column: all of ``A(x)``, for recourse) or
    :meth:`single` (each keyed column has its own box, the person with that column free: one
    single-feature part at a time, for responsiveness).
    """

    def __init__(
        self, bound: TreeBound, lo: np.ndarray, hi: np.ndarray, counts: dict[int, np.ndarray]
    ) -> None:
        self.bound, self.lo, self.hi, self.counts = bound, lo, hi, counts
        self.thr = bound.thresholds()
        self.read = set(bound.numeric) | set(bound.category) | set(bound.ordinal)

    @classmethod
    def joint(cls, bound: TreeBound, lo: np.ndarray, hi: np.ndarray) -> CellKeys:
        cols = sorted(bound.numeric)
        zlo, zhi = bound.box(lo, hi)
        by_input = bound.cell_counts(zlo, zhi, [bound.numeric[j][0] for j in cols])
        return cls(bound, lo, hi, {j: by_input[bound.numeric[j][0]] for j in cols})

    @classmethod
    def single(
        cls, bound: TreeBound, X: np.ndarray, lo: np.ndarray, hi: np.ndarray, cols
    ) -> CellKeys:
        cols = sorted(int(j) for j in cols if int(j) in bound.numeric)
        zx, _ = bound.box(X, X)
        zlo, zhi = bound.box(lo, hi)
        by_input = bound.single_cell_counts(zx, zlo, zhi, [bound.numeric[j][0] for j in cols])
        return cls(bound, lo, hi, {j: by_input[bound.numeric[j][0]] for j in cols})

    def _ids(self, box: np.ndarray, j: int, v: np.ndarray) -> np.ndarray:
        o, mean, scale = self.bound.numeric[j]
        z = (v - mean) / scale
        if self.bound.float32:  # the model's own arithmetic, as in Cells.ids
            z = z.astype(np.float32).astype(np.float64)
        t = self.thr.get(o, np.zeros(0))
        return self.counts[j][box, np.searchsorted(t, z, side="left")].astype(np.int64)

    def groups(
        self, box: np.ndarray, cols: np.ndarray, V: np.ndarray, *, first: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Group candidates (rows of part values ``V`` on columns ``cols``, of person ``box``)
        by key. Returns one representative per group, in row order, and each row's group (an
        index into the representatives). With ``first`` the representative is the group's
        first row; otherwise any row of it (faster)."""
        m = len(V)
        if m == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        lo, hi = self.lo[:, cols][box], self.hi[:, cols][box]
        inside = np.all((lo <= V) & (hi >= V), axis=1)
        K = np.zeros((m, len(cols) + 2), dtype=np.int64)
        K[:, 0] = box
        K[:, 1] = np.where(inside, 0, 1 + np.arange(m))  # outside: a group of its own
        for c, j in enumerate(cols):
            j = int(j)
            if j in self.counts:
                K[inside, c + 2] = self._ids(box[inside], j, V[inside, c])
            elif j in self.bound.category or j in self.bound.ordinal:
                K[inside, c + 2] = V[inside, c].astype(np.int64)
            elif j in self.read:
                K[:, c + 2] = np.unique(V[:, c], return_inverse=True)[1].ravel()
        if K.shape[1] == 3:  # one column: pack into one integer
            span = int(K[:, 2].max()) + 1
            if not first and not np.any(K[:, 1]):
                base = int(K[:, 0].min())
                return any_of_groups((K[:, 0] - base) * span + K[:, 2])
            return first_of_groups((K[:, 0] * (m + 1) + K[:, 1]) * span + K[:, 2])
        return first_of_groups(K)
