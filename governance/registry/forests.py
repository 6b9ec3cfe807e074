"""Fitted tree ensembles as plain node arrays, and how schema columns reach their inputs.

:func:`column_maps` says, per schema column, which estimator input it becomes (passthrough or
standardised numeric, a one-hot block, or an ordinal code). :func:`parse_forest` turns the
final estimator into ``(left, right, feature, threshold, leaf)`` arrays per tree in one rule,
"go left when input <= threshold", for every family it knows:

- scikit-learn decision trees, random and extra forests, gradient boosting;
- histogram gradient boosting, numeric and categorical splits: a categorical split sends each
  known code left or right by its bitsets (unknown codes go where missing values go), so over
  the codes a column can take it is a run of intervals, rewritten as threshold splits between
  codes (the subtrees below are copied once per interval, so every node keeps one parent);
- XGBoost (``XGBClassifier``, binary logistic, numeric splits) from its JSON model: a split
  ``x < c`` on float32 inputs is ``x <= c'`` with ``c'`` the float32 just below ``c``; leaves
  are float32 and the model adds them in float32, so the bound carries a small tolerance;
- LightGBM (``LGBMClassifier``, binary, numeric ``<=`` splits and categorical ``==`` splits)
  from its model dump, in float64 as LightGBM computes.

Anything else is reported by :func:`why_not_parsed`, and is searched by sampling. The parse is
trusted only where it reproduces the model's scores (the callers check).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Tree = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class ColumnMaps:
    """How schema columns enter the final estimator.

    Attributes
    ----------
    final : estimator
    numeric : dict
        Schema column -> (input, mean, scale): the input is ``(value - mean) / scale``.
    category : dict
        Schema column -> (slice of one-hot inputs, categories).
    ordinal : dict
        Schema column -> (input, codes): the input is ``codes[schema code]``.
    """

    final: Any
    numeric: dict[int, tuple[int, float, float]] = field(default_factory=dict)
    category: dict[int, tuple[slice, list[str]]] = field(default_factory=dict)
    ordinal: dict[int, tuple[int, np.ndarray]] = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        ends = [o for o, _, _ in self.numeric.values()]
        ends += [sl.stop - 1 for sl, _ in self.category.values()]
        ends += [o for o, _ in self.ordinal.values()]
        return 1 + max(ends) if ends else 0

    def values_of(self, o: int) -> np.ndarray | None:
        """The input values an ordinal input can take, sorted; None for other inputs."""
        for inp, codes in self.ordinal.values():
            if inp == o:
                return np.unique(codes)
        return None


@dataclass
class ParsedForest:
    """A tree ensemble as node arrays: ``combine`` is "sum" (raw score of ``classes_[1]``
    through a sigmoid, from ``base``; None when unknown) or "mean" (probabilities of the
    favourable class); ``tol`` bounds the gap between float64 sums and the model's own."""

    trees: list[Tree]
    combine: str
    base: float | None
    float32: bool
    tol: float = 1e-9


def final_estimator(est: Any) -> Any:
    """The last step of a Pipeline, or the estimator itself."""
    from sklearn.pipeline import Pipeline

    return est.steps[-1][1] if isinstance(est, Pipeline) else est


def _is_identity(trans: Any) -> bool:
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import check_array

    if isinstance(trans, str):
        return trans == "passthrough"
    if not isinstance(trans, FunctionTransformer):
        return False
    # histogram gradient boosting's own preprocessor passes numbers through check_array
    return trans.func is None or getattr(trans.func, "func", None) is check_array


def _columns(cols: Any, col: dict[str, int]) -> list[int] | None:
    arr = np.atleast_1d(np.asarray(cols))
    if arr.dtype == bool:
        return np.flatnonzero(arr).tolist()
    out = []
    for c in arr.tolist():
        if isinstance(c, str):
            if c not in col:
                return None
            out.append(col[c])
        else:
            out.append(int(c))
    return out


def _ordinal_codes(trans: Any, k: int, spec_categories: tuple[str, ...]) -> np.ndarray | None:
    learnt = [str(c) for c in trans.categories_[k]]
    codes = []
    for cat in spec_categories:
        if cat not in learnt:
            return None
        codes.append(float(learnt.index(cat)))
    return np.asarray(codes)


def column_maps(model: Any) -> ColumnMaps | None:
    """How each schema column of ``model`` (a DecisionModel) reaches the final estimator.

    Recognised: a bare estimator on numeric features; histogram gradient boosting on a frame
    with categorical columns (its own ordinal encoder); LightGBM and XGBoost on such a frame
    (category codes); a Pipeline of one ColumnTransformer (passthrough, StandardScaler,
    OneHotEncoder without drop, OrdinalEncoder) and the estimator. Returns None otherwise.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    est = model.estimator
    schema = model.schema
    names = schema.names
    col = {n: j for j, n in enumerate(names)}
    if isinstance(est, Pipeline):
        steps = [s for _, s in est.steps]
        if len(steps) != 2 or not isinstance(steps[0], ColumnTransformer):
            return None
        pre, final = steps
    else:
        final, pre = est, getattr(est, "_preprocessor", None)
        if pre is None:
            if getattr(est, "n_features_in_", None) != len(names):
                return None
            maps = ColumnMaps(final)
            for j, spec in enumerate(schema):
                if spec.dtype == "category":
                    codes = _native_codes(final, j, spec)
                    if codes is None:
                        return None
                    maps.ordinal[j] = (j, codes)
                else:
                    maps.numeric[j] = (j, 0.0, 1.0)
            return maps
    maps = ColumnMaps(final)
    for name, trans, cols in pre.transformers_:
        if isinstance(trans, str) and trans == "drop":
            continue
        out = pre.output_indices_[name]
        idx = _columns(cols, col)
        if idx is None:
            return None
        if _is_identity(trans):
            for k, j in enumerate(idx):
                if schema.features[j].dtype == "category":
                    return None
                maps.numeric[j] = (out.start + k, 0.0, 1.0)
        elif isinstance(trans, StandardScaler):
            mean = trans.mean_ if trans.mean_ is not None else np.zeros(len(idx))
            scale = trans.scale_ if trans.scale_ is not None else np.ones(len(idx))
            for k, j in enumerate(idx):
                maps.numeric[j] = (out.start + k, float(mean[k]), float(scale[k]))
        elif isinstance(trans, OneHotEncoder) and trans.drop_idx_ is None:
            start = out.start
            for k, j in enumerate(idx):
                cats = [str(c) for c in trans.categories_[k]]
                maps.category[j] = (slice(start, start + len(cats)), cats)
                start += len(cats)
        elif isinstance(trans, OrdinalEncoder):
            for k, j in enumerate(idx):
                spec = schema.features[j]
                if spec.dtype != "category":
                    return None
                codes = _ordinal_codes(trans, k, spec.categories or ())
                if codes is None:
                    return None
                maps.ordinal[j] = (out.start + k, codes)
        else:
            return None
    return maps


def _native_codes(final: Any, j: int, spec: Any) -> np.ndarray | None:
    """Codes a bare LightGBM or XGBoost model reads for a pandas categorical column: LightGBM
    re-maps values to its training categories; XGBoost reads the frame's own codes."""
    booster = getattr(final, "booster_", None)
    pandas_cats = getattr(booster, "pandas_categorical", None) if booster is not None else None
    if pandas_cats:
        names = [str(n) for n in final.feature_names_in_]
        positions = lightgbm_categorical(final, names)
        if j not in positions:
            return None
        learnt = [str(c) for c in pandas_cats[positions.index(j)]]
        if not all(c in learnt for c in spec.categories):
            return None
        return np.array([float(learnt.index(c)) for c in spec.categories])
    if type(final).__name__ == "XGBClassifier" and getattr(final, "enable_categorical", False):
        return np.arange(len(spec.categories), dtype=float)
    return None


def lightgbm_categorical(final: Any, names: list[str]) -> list[int]:
    """Positions of a LightGBM model's categorical features (their info lists the values
    seen), in the order its ``pandas_categorical`` lists their categories."""
    try:
        infos = final.booster_.dump_model(num_iteration=0).get("feature_infos", {})
    except Exception:  # noqa: BLE001 - not LightGBM after all
        return []
    return [j for j, n in enumerate(names) if (infos.get(n) or {}).get("values")]


# ------------------------------------------------------------------------------------------
# families
# ------------------------------------------------------------------------------------------
def parse_forest(final: Any, maps: ColumnMaps, fav: int = 1) -> ParsedForest | str:
    """The final estimator's trees, or a one-line reason why they cannot be parsed.

    Averaging ensembles ("mean") get leaves holding P(``classes_[fav]``), computed as the
    model computes it; boosting ensembles ("sum") always hold the raw score of ``classes_[1]``.
    """
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import DecisionTreeClassifier

    classes = list(getattr(final, "classes_", []))
    if len(classes) != 2:
        return f"{type(final).__name__}: only binary classifiers are parsed"
    if isinstance(final, HistGradientBoostingClassifier):
        return _hist_gradient_boosting(final, maps)
    if isinstance(final, GradientBoostingClassifier):
        if final.loss != "log_loss" or final.estimators_.shape[1] != 1:
            return "GradientBoostingClassifier: only binary log-loss models are parsed"
        base = None
        if final.init in (None, "zero"):
            base = float(np.ravel(final._raw_predict_init(np.zeros((1, maps.n_inputs))))[0])
        lr = float(final.learning_rate)
        trees = []
        for est in final.estimators_[:, 0]:
            t = est.tree_
            leaf = np.where(t.children_left < 0, lr * t.value[:, 0, 0], np.nan)
            trees.append((t.children_left, t.children_right, t.feature, t.threshold, leaf))
        return ParsedForest(trees, "sum", base, True)
    if isinstance(final, DecisionTreeClassifier):
        ests = [final]
    elif isinstance(final, RandomForestClassifier | ExtraTreesClassifier):
        ests = list(final.estimators_)
    else:
        kind = type(final).__name__
        if kind == "XGBClassifier":
            return _xgboost(final, maps)
        if kind == "LGBMClassifier":
            return _lightgbm(final, maps)
        return f"{kind}: not a tree ensemble the parser knows"
    return ParsedForest([_sklearn_tree(est, fav) for est in ests], "mean", 0.0, True)


def _sklearn_tree(est: Any, fav: int) -> Tree:
    t = est.tree_
    v = t.value[:, 0, :]
    p = v[:, fav] / np.maximum(v.sum(axis=1), 1e-300)
    leaf = np.where(t.children_left < 0, p, np.nan)
    return (t.children_left, t.children_right, t.feature, t.threshold, leaf)


class _Builder:
    """Collects nodes of one tree in the "left when input <= threshold" form."""

    def __init__(self) -> None:
        self.left: list[int] = []
        self.right: list[int] = []
        self.feat: list[int] = []
        self.thr: list[float] = []
        self.leaf: list[float] = []

    def node(self) -> int:
        for a, v in ((self.left, -1), (self.right, -1), (self.feat, -2), (self.thr, -2.0),
                     (self.leaf, np.nan)):
            a.append(v)
        return len(self.leaf) - 1

    def add_leaf(self, value: float) -> int:
        i = self.node()
        self.leaf[i] = float(value)
        return i

    def add_split(self, feature: int, threshold: float) -> int:
        i = self.node()
        self.feat[i], self.thr[i] = int(feature), float(threshold)
        return i

    def intervals(self, feature: int, values: np.ndarray, goes_left: np.ndarray, emit) -> int:
        """Threshold splits over sorted ``values`` whose runs of equal direction become
        intervals; ``emit(left)`` builds a fresh copy of the chosen child."""
        runs = np.flatnonzero(np.concatenate([[True], goes_left[1:] != goes_left[:-1]]))

        def build(lo: int, hi: int) -> int:  # runs lo..hi-1
            if hi - lo == 1:
                return emit(bool(goes_left[runs[lo]]))
            mid = (lo + hi) // 2
            cut = runs[mid]
            i = self.add_split(feature, (values[cut - 1] + values[cut]) / 2.0)
            left = build(lo, mid)
            right = build(mid, hi)
            self.left[i], self.right[i] = left, right
            return i

        return build(0, len(runs))

    def arrays(self) -> Tree:
        return (np.asarray(self.left, dtype=np.int64), np.asarray(self.right, dtype=np.int64),
                np.asarray(self.feat, dtype=np.int64), np.asarray(self.thr, dtype=np.float64),
                np.asarray(self.leaf, dtype=np.float64))


_MAX_NODES = 2_000_000  # copies of subtrees below categorical splits, over the whole forest


def _in_bitset(bitsets: np.ndarray, row: int, value: int) -> bool:
    return bool((int(bitsets[row, value // 32]) >> (value % 32)) & 1)


def _hist_gradient_boosting(final: Any, maps: ColumnMaps) -> ParsedForest | str:
    if final.n_trees_per_iteration_ != 1:
        return "HistGradientBoostingClassifier: only binary models are parsed"
    known, f_idx_map = None, None
    if np.any(getattr(final, "is_categorical_", None) is not None and final.is_categorical_):
        known, f_idx_map = final._bin_mapper.make_known_categories_bitsets()
    trees, total = [], 0
    for stage in final._predictors:
        pred = stage[0]
        nodes = pred.nodes
        b = _Builder()

        def emit(i: int, nodes=nodes, pred=pred, b=b) -> int:
            nd = nodes[i]
            if nd["is_leaf"]:
                return b.add_leaf(nd["value"])
            f = int(nd["feature_idx"])
            if not nd["is_categorical"]:
                k = b.add_split(f, nd["num_threshold"])
                left, right = emit(int(nd["left"])), emit(int(nd["right"]))
                b.left[k], b.right[k] = left, right
                return k
            values = maps.values_of(f)
            if values is None or np.any(values < 0) or np.any(values >= 256) or np.any(
                values != np.round(values)
            ):
                raise _Unparsed(f"categorical input {f} has no known set of integer codes")
            missing_left = bool(nd["missing_go_to_left"])
            goes = []
            for v in values.astype(np.int64):
                if _in_bitset(pred.raw_left_cat_bitsets, int(nd["bitset_idx"]), int(v)):
                    goes.append(True)
                elif known is not None and _in_bitset(known, int(f_idx_map[f]), int(v)):
                    goes.append(False)
                else:  # unknown categories go where missing values go
                    goes.append(missing_left)
            return b.intervals(
                f, values, np.asarray(goes),
                lambda go_left, nd=nd: emit(int(nd["left"] if go_left else nd["right"])),
            )

        try:
            emit(0)
        except _Unparsed as exc:
            return f"HistGradientBoostingClassifier: {exc}"
        tree = b.arrays()
        total += len(tree[0])
        if total > _MAX_NODES:
            return "HistGradientBoostingClassifier: categorical splits expand past the node limit"
        trees.append(tree)
    base = float(np.ravel(final._baseline_prediction)[0])
    return ParsedForest(trees, "sum", base, False)


class _Unparsed(Exception):
    pass


def _xgboost(final: Any, maps: ColumnMaps) -> ParsedForest | str:
    booster = final.get_booster()
    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    objective = learner["objective"]["name"]
    if objective != "binary:logistic":
        return f"XGBClassifier: objective {objective} is not parsed (binary:logistic only)"
    gb = learner["gradient_booster"]
    if gb.get("name") != "gbtree":
        return f"XGBClassifier: booster {gb.get('name')} is not parsed (gbtree only)"
    base_score = learner["learner_model_param"]["base_score"].strip("[]")
    p = float(np.float32(float(base_score)))
    base = float(np.log(p / (1.0 - p)))
    trees = []
    info = gb["model"]
    tree_info = info.get("tree_info", [])
    for k, tree in enumerate(info["trees"]):
        if tree_info and tree_info[k] != 0:
            return "XGBClassifier: more than one output group"
        if any(int(s) != 0 for s in tree.get("split_type", [])):
            return "XGBClassifier: categorical splits are not parsed"
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        feat = np.asarray(tree["split_indices"], dtype=np.int64)
        cond = np.asarray(tree["split_conditions"], dtype=np.float64).astype(np.float32)
        is_leaf = left < 0
        # x < c on float32 inputs is x <= the float32 just below c
        below = np.nextafter(cond, np.float32(-np.inf)).astype(np.float64)
        thr = np.where(is_leaf, 0.0, below)
        leaf = np.where(is_leaf, cond.astype(np.float64), np.nan)
        trees.append((left, right, np.where(is_leaf, -2, feat), thr, leaf))
    tol = 1e-5  # XGBoost adds float32 leaves in float32: the float64 sum may differ slightly
    return ParsedForest(trees, "sum", base, True, tol)


def _lightgbm(final: Any, maps: ColumnMaps) -> ParsedForest | str:
    dump = final.booster_.dump_model()
    if dump.get("num_class", 1) != 1 or dump.get("num_tree_per_iteration", 1) != 1:
        return "LGBMClassifier: only binary models are parsed"
    objective = str(dump.get("objective", ""))
    if not objective.startswith("binary"):
        return f"LGBMClassifier: objective {objective} is not parsed (binary only)"
    sigmoid = 1.0
    for part in objective.split():
        if part.startswith("sigmoid:"):
            sigmoid = float(part.split(":", 1)[1])
    if sigmoid != 1.0:
        return "LGBMClassifier: a sigmoid other than 1 is not parsed"
    trees = []
    try:
        for info in dump["tree_info"]:
            b = _Builder()
            _lgb_node(info["tree_structure"], b, maps)
            trees.append(b.arrays())
    except _Unparsed as exc:
        return f"LGBMClassifier: {exc}"
    return ParsedForest(trees, "sum", 0.0, False)


def _lgb_node(nd: dict[str, Any], b: _Builder, maps: ColumnMaps) -> int:
    if "leaf_value" in nd:
        return b.add_leaf(nd["leaf_value"])
    f = int(nd["split_feature"])
    if nd.get("missing_type") == "Zero":
        raise _Unparsed("zero-as-missing splits are not parsed")
    if nd["decision_type"] == "<=":
        k = b.add_split(f, float(nd["threshold"]))
        left, right = _lgb_node(nd["left_child"], b, maps), _lgb_node(nd["right_child"], b, maps)
        b.left[k], b.right[k] = left, right
        return k
    if nd["decision_type"] != "==":
        raise _Unparsed(f"decision type {nd['decision_type']!r} is not parsed")
    values = maps.values_of(f)
    if values is None:
        raise _Unparsed(f"categorical input {f} has no known set of codes")
    lefts = {int(v) for v in str(nd["threshold"]).split("||")}
    goes = np.array([int(v) in lefts for v in values])
    return b.intervals(
        f, values, goes,
        lambda go_left: _lgb_node(nd["left_child" if go_left else "right_child"], b, maps),
    )


def why_not_parsed(model: Any) -> str:
    """One line saying why the model's structure is not parsed (empty if it is)."""
    from sklearn.linear_model import LogisticRegression

    try:
        maps = column_maps(model)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        return f"preprocessing not recognised: {type(exc).__name__}: {exc}".splitlines()[0]
    if maps is None:
        return (
            "preprocessing not recognised: expected the estimator alone, or a Pipeline of one "
            "ColumnTransformer (passthrough, StandardScaler, OneHotEncoder without drop, "
            "OrdinalEncoder) and the estimator"
        )
    if isinstance(maps.final, LogisticRegression):
        return ""
    parsed = parse_forest(maps.final, maps)
    return parsed if isinstance(parsed, str) else ""


__all__ = [
    "ColumnMaps",
    "ParsedForest",
    "column_maps",
    "final_estimator",
    "lightgbm_categorical",
    "parse_forest",
    "why_not_parsed",
]
