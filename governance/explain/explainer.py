"""SHAP attributions for each decision, mapped back to the model's original features, and reasons.

The explainer follows the model family: ``TreeExplainer`` (path-dependent) for tree ensembles
(but those with categorical splits), ``LinearExplainer`` for linear models, and a seeded
``PermutationExplainer`` over a small background sample for anything else; ``TreeExplainer``
with a background (interventional) can be chosen instead (see ``govern explainers compare``).
Attributions always explain the *favourable* class, so a negative attribution pushes towards
denial; through a scikit-learn Pipeline, one-hot columns are summed back into the categorical
feature they encode (attributions are additive, so the sum is exact).
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from governance.hashing import row_seeds, sha256_frame
from governance.registry.model import DecisionModel

TOP_K = 4
BACKGROUND_SIZE = 100  # training rows sampled as background for linear and permutation SHAP
ADDITIVITY_TOL = 1e-6
# XGBoost sums trees in float32, so its attributions only add up to about 1e-6 relative.
_FLOAT32_TOL = 1e-4

# SHAP's permutation explainer draws from NumPy's global generator: one seeded row at a time
# per process, or two threads (a chunk still running after its flow died, beside the rerun's)
# would interleave their draws.
_GLOBAL_RNG = threading.Lock()

_TREE_MODELS = {
    "HistGradientBoostingClassifier": "log_odds",
    "GradientBoostingClassifier": "log_odds",
    "XGBClassifier": "log_odds",
    "LGBMClassifier": "log_odds",
    "RandomForestClassifier": "probability",
    "ExtraTreesClassifier": "probability",
    "DecisionTreeClassifier": "probability",
}
_LINEAR_MODELS = {"LogisticRegression", "LogisticRegressionCV", "SGDClassifier"}


@dataclass(frozen=True)
class ExplainerConfig:
    """What produced the attributions: enough for a reviewer to reproduce them."""

    explainer: str
    output: str  # "log_odds" or "probability" of the favourable class
    settings: dict[str, Any] = field(default_factory=dict)
    background_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "explainer": self.explainer,
            "output": self.output,
            "settings": self.settings,
            "background_sha256": self.background_sha256,
        }


@dataclass(frozen=True)
class Explanation:
    """Attributions for a batch of rows.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_features)
        Attribution of each original feature towards the favourable class.
    base_values : ndarray of shape (n_samples,)
    model_output : ndarray of shape (n_samples,)
        The explained output computed directly from the model, in ``config.output`` units.
    feature_names : list of str
    config : ExplainerConfig
    """

    values: np.ndarray
    base_values: np.ndarray
    model_output: np.ndarray
    feature_names: list[str]
    config: ExplainerConfig

    @property
    def additivity_error(self) -> np.ndarray:
        """|base + sum(attributions) - model output| per row."""
        return np.abs(self.base_values + self.values.sum(axis=1) - self.model_output)

    @property
    def additive(self) -> np.ndarray:
        """Quality flag per row: local accuracy holds within the explainer's relative tolerance."""
        tol = self.config.settings.get("additivity_tolerance", ADDITIVITY_TOL)
        scale = np.maximum(1.0, np.abs(self.model_output))
        return self.additivity_error <= tol * scale


def model_family(model: DecisionModel) -> str:
    """The class name of the model's final estimator (inside a Pipeline, its last step)."""
    return type(_split_pipeline(model.estimator)[1]).__name__


def candidate_kinds(model: DecisionModel) -> list[str]:
    """Explainer kinds that can explain ``model``: the tree kinds for tree ensembles, linear
    for linear models, and the model-agnostic permutation explainer for any model."""
    family = model_family(model)
    if family in _TREE_MODELS:
        return ["tree", "tree_interventional", "permutation"]
    if family in _LINEAR_MODELS:
        return ["linear", "permutation"]
    return ["permutation"]


def is_tree_model(model: DecisionModel) -> bool:
    """Whether the model is a tree ensemble (piecewise constant: its stability neighbourhood
    must be wide enough to cross splits)."""
    return model_family(model) in _TREE_MODELS


def _split_pipeline(estimator: Any) -> tuple[Any | None, Any]:
    if isinstance(estimator, Pipeline):
        pre = estimator[:-1] if len(estimator.steps) > 1 else None
        return pre, estimator.steps[-1][1]
    return None, estimator


def _splits_on_categories(est: Any) -> bool:
    """Trees with categorical splits (histogram gradient boosting on categorical features,
    LightGBM's pandas categories, XGBoost with categories), which SHAP's tree explainer does
    not read as the model does: they are explained by permutation through the model."""
    flags = getattr(est, "is_categorical_", None)
    if flags is not None and np.any(flags):
        return True
    booster = getattr(est, "booster_", None)
    if booster is not None and getattr(booster, "pandas_categorical", None):
        return True
    return bool(getattr(est, "enable_categorical", False))


def _column_map(pre: Any, features: list[str], n_out: int) -> np.ndarray:
    """Matrix (n_out, n_features) that sums transformed columns back into input features."""
    T = np.zeros((n_out, len(features)))
    steps = pre.steps if isinstance(pre, Pipeline) else [("pre", pre)]
    if len(steps) != 1 or not isinstance(steps[0][1], ColumnTransformer):
        raise TypeError("only a single ColumnTransformer step can be mapped back to features")
    ct = steps[0][1]
    pos = 0
    for _, trans, cols in ct.transformers_:
        if trans == "drop" or len(cols) == 0:
            continue
        names = [features[c] if isinstance(c, int | np.integer) else c for c in cols]
        if isinstance(trans, OneHotEncoder):
            for name, cats in zip(names, trans.categories_, strict=True):
                T[pos : pos + len(cats), features.index(name)] = 1.0
                pos += len(cats)
        else:  # passthrough and element-wise scalers keep one column per feature
            for name in names:
                T[pos, features.index(name)] = 1.0
                pos += 1
    if pos != n_out:
        raise TypeError(f"mapped {pos} transformed columns, but the model sees {n_out}")
    return T


def _sum_columns(vals: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``vals @ T`` for a 0/1 map, summed column by column in a fixed order.

    A matrix product's rounding depends on how many rows it is given (BLAS blocks them), so the
    same decision would get attributions differing in the last bits in chunks of different
    sizes; element-wise sums make each row's result depend on that row alone.
    """
    out = np.zeros((vals.shape[0], T.shape[1]))
    for j in range(T.shape[1]):
        for c in np.flatnonzero(T[:, j]):
            out[:, j] += vals[:, c]
    return out


def _margin(est: Any, Xt: Any) -> np.ndarray:
    """Raw log-odds of ``classes_[1]`` as the tree explainers define it."""
    name = type(est).__name__
    if name == "XGBClassifier":
        return np.asarray(est.predict(Xt, output_margin=True), dtype=float)
    if name == "LGBMClassifier":
        return np.asarray(est.predict(Xt, raw_score=True), dtype=float)
    if hasattr(est, "decision_function"):
        return np.asarray(est.decision_function(Xt), dtype=float).ravel()
    p = np.clip(est.predict_proba(Xt)[:, 1], 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


class Explainer:
    """Attributions for one model version.

    Parameters
    ----------
    model : DecisionModel
        The model whose decisions are explained.
    background : DataFrame, optional
        Rows of the training data; linear and permutation explainers use a sample of at most
        ``background_size`` of them. Tree explainers use the trees' own cover instead.
    background_size : int, default=100
    seed : int, default=0
        Seeds the background sample and the permutation explainer.
    kind : {"auto", "tree", "tree_interventional", "linear", "permutation"}, default="auto"
        "tree" is path-dependent TreeSHAP (``"tree_path_dependent"`` is accepted as a synonym);
        "tree_interventional" averages over the background sample instead.

    Attributes
    ----------
    background : DataFrame or None
        The background sample (at most ``background_size`` training rows, seeded), kept for
        every kind: the faithfulness metrics replace features with its rows.
    background_sha256 : str or None
    """

    KINDS = ("tree", "tree_interventional", "linear", "permutation")

    def __init__(
        self,
        model: DecisionModel,
        background: pd.DataFrame | None = None,
        *,
        background_size: int = BACKGROUND_SIZE,
        seed: int = 0,
        kind: str = "auto",
    ) -> None:
        import shap  # heavy import, deferred until an explainer is built

        self.model = model
        self.features = model.schema.names
        pre, est = _split_pipeline(model.estimator)
        self._pre, self._est = pre, est
        family = type(est).__name__
        if kind == "tree_path_dependent":
            kind = "tree"
        if kind == "auto":
            kind = (
                "tree"
                if family in _TREE_MODELS and not _splits_on_categories(est)
                else ("linear" if family in _LINEAR_MODELS else "permutation")
            )
        if kind in ("tree", "tree_interventional", "linear") and pre is not None:
            try:
                probe = (
                    model.estimator_frame(background.head(2)) if background is not None else None
                )
                n_out = pre.transform(probe).shape[1] if probe is not None else None
            except Exception:  # noqa: BLE001 - any failure means we cannot map columns back
                n_out = None
            if n_out is None and kind == "linear":
                raise ValueError("a linear explainer needs background rows")
        bg = None
        if background is not None and len(background):
            n = min(background_size, len(background))
            bg = model.frame(background.sample(n=n, random_state=seed).reset_index(drop=True))
        self.background = bg
        self.background_sha256 = sha256_frame(bg) if bg is not None else None
        # Attributions explain classes_[1]; flip them when approval is class 0.
        self._sign = 1.0 if model.favourable_index == 1 else -1.0
        settings: dict[str, Any] = {
            "shap_version": shap.__version__,
            "model_family": family,
            "additivity_tolerance": _FLOAT32_TOL if family == "XGBClassifier" else ADDITIVITY_TOL,
        }
        if kind == "tree":
            if family not in _TREE_MODELS:
                raise ValueError(f"TreeExplainer does not support {family}")
            self._shap = shap.TreeExplainer(est, feature_perturbation="tree_path_dependent")
            output = _TREE_MODELS[family]
            settings["feature_perturbation"] = "tree_path_dependent"
            bg_hash = None
        elif kind == "tree_interventional":
            if family not in _TREE_MODELS:
                raise ValueError(f"TreeExplainer does not support {family}")
            if bg is None:
                raise ValueError("an interventional tree explainer needs background rows")
            Xbg = pre.transform(bg) if pre is not None else bg.to_numpy(float)
            self._shap = shap.TreeExplainer(
                est, data=np.asarray(Xbg, dtype=float), feature_perturbation="interventional"
            )
            output = _TREE_MODELS[family]
            settings.update(feature_perturbation="interventional", background_rows=len(bg))
            bg_hash = sha256_frame(bg)
        elif kind == "linear":
            if bg is None:
                raise ValueError("a linear explainer needs background rows")
            Xbg = self._estimator_input(bg)
            self._shap = shap.LinearExplainer(est, np.asarray(Xbg, dtype=float))
            output = "log_odds"
            settings.update(feature_perturbation="interventional", background_rows=len(bg))
            bg_hash = sha256_frame(bg)
        elif kind == "permutation":
            if bg is None:
                raise ValueError("a permutation explainer needs background rows")
            masker = shap.maskers.Independent(model.matrix(bg), max_samples=len(bg))
            self._shap = shap.PermutationExplainer(self._favourable_probability, masker, seed=seed)
            output = "probability"
            self._max_evals = 2 * len(self.features) + 1
            settings.update(background_rows=len(bg), max_evals=max(500, self._max_evals), seed=seed)
            bg_hash = sha256_frame(bg)
        else:
            raise ValueError(
                f"unknown explainer kind {kind!r}; expected auto, tree, tree_interventional, "
                "linear or permutation"
            )
        self.kind = kind
        self.seed = seed
        self.config = ExplainerConfig(
            f"shap.{type(self._shap).__name__}", output, settings, bg_hash
        )
        self._map: np.ndarray | None = None

    def _favourable_probability(self, M: np.ndarray) -> np.ndarray:
        return self.model.score(M)

    def _estimator_input(self, frame: pd.DataFrame) -> Any:
        """What the final estimator is given, with the same column mapping as
        ``DecisionModel.score``: the preprocessing's output, or the schema's columns in the
        order the estimator was fitted on (a frame when it was fitted on one, so scikit-learn
        sees the names it expects)."""
        X = self.model.estimator_frame(frame)
        if self._pre is not None:
            return self._pre.transform(X)
        if getattr(self._est, "feature_names_in_", None) is not None:
            return X.astype(float)
        return X.to_numpy(float)

    def _transform(self, frame: pd.DataFrame) -> tuple[Any, np.ndarray]:
        raw = self._estimator_input(frame)
        Xt = np.asarray(raw, dtype=float)
        if self._map is None:
            if self._pre is not None:
                self._map = _column_map(self._pre, self.features, Xt.shape[1])
            else:
                order = self.model.estimator_frame(frame.head(0)).columns
                self._map = np.zeros((Xt.shape[1], len(self.features)))
                for i, name in enumerate(order):
                    self._map[i, self.features.index(name)] = 1.0
        return raw, Xt

    def _permutation_values(self, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Permutation SHAP row by row, each row's permutations seeded from its own values.

        SHAP draws them from NumPy's global generator, seeded once when the explainer is built,
        so without this a row's attributions would depend on every row a worker explained
        before it; a lock keeps threads of one process from drawing between a seed and its row.
        """
        values = np.empty_like(M)
        base = np.empty(len(M))
        for i, s in enumerate(row_seeds(M, self.seed)):
            with _GLOBAL_RNG:
                np.random.seed(int(s) % 2**32)
                res = self._shap(M[i : i + 1], max_evals=max(500, self._max_evals), silent=True)
            values[i] = np.asarray(res.values, dtype=float)[0]
            base[i] = np.asarray(res.base_values, dtype=float).reshape(-1)[0]
        return values, base

    def explain(self, X: pd.DataFrame) -> Explanation:
        """Explain each row of ``X`` (schema columns).

        Returns
        -------
        Explanation
        """
        frame = self.model.frame(X)
        n = len(frame)
        if n == 0:
            empty = np.empty((0, len(self.features)))
            return Explanation(empty, np.empty(0), np.empty(0), self.features, self.config)
        if self.kind == "permutation":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values, base = self._permutation_values(self.model.matrix(frame))
            output = self.model.score(frame)
            return Explanation(values, base, output, self.features, self.config)
        raw, Xt = self._transform(frame)
        # Additivity is checked, and stored, per row below rather than raised by SHAP.
        tree = self.kind in ("tree", "tree_interventional")
        res = self._shap(Xt, check_additivity=False) if tree else self._shap(Xt)
        vals = np.asarray(res.values, dtype=float)
        base = np.asarray(res.base_values, dtype=float)
        sign = self._sign
        if vals.ndim == 3:  # one probability slice per class (forests): take the favourable one
            fav = self.model.favourable_index
            vals, base, sign = vals[..., fav], base[..., fav], 1.0
        base = np.broadcast_to(base.reshape(-1) if base.size > 1 else base, (n,)).copy()
        values = sign * _sum_columns(vals, self._map)
        base = sign * base
        if self.config.output == "probability":
            output = self._est.predict_proba(raw)[:, self.model.favourable_index]
        else:
            output = self._sign * _margin(self._est, raw)
        return Explanation(
            values, base, np.asarray(output, dtype=float), self.features, self.config
        )


def top_reasons(values: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
    """Top-k features pushing towards denial, per row.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_features)
        Attributions towards the favourable class.
    k : int, default=4

    Returns
    -------
    index : ndarray of shape (n_samples, k), int
        Feature positions ordered from the strongest push towards denial; -1 where a row has
        fewer than k features with a negative attribution.
    value : ndarray of shape (n_samples, k)
        Their attributions (NaN where index is -1).

    Examples
    --------
    >>> idx, val = top_reasons(np.array([[0.2, -0.5, -0.1, 0.0]]), k=3)
    >>> idx.tolist()
    [[1, 2, -1]]
    """
    values = np.asarray(values, dtype=float)
    masked = np.where(values < 0, values, np.inf)
    order = np.argsort(masked, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(masked, order, axis=1)
    valid = np.isfinite(picked)
    index = np.where(valid, order, -1)
    value = np.where(valid, picked, np.nan)
    if index.shape[1] < k:  # fewer features than k
        pad = k - index.shape[1]
        index = np.pad(index, ((0, 0), (0, pad)), constant_values=-1)
        value = np.pad(value, ((0, 0), (0, pad)), constant_values=np.nan)
    return index, value
