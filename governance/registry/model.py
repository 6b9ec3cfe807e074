"""A fitted estimator bound to its feature schema, favourable class and decision threshold."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.registry.schema import FeatureSchema


@dataclass
class PredictStats:
    """Counts of model calls, so benchmarks can report the share of time spent inside predict."""

    calls: int = 0
    rows: int = 0
    seconds: float = 0.0

    def reset(self) -> None:
        self.calls, self.rows, self.seconds = 0, 0, 0.0


@dataclass
class DecisionModel:
    """What made a decision: estimator, input contract and decision rule.

    The decision is ``approve`` when the probability of ``favourable_class`` is at least
    ``threshold``. All methods accept either a frame with the schema's columns or a numeric matrix
    in schema order in which category features hold their integer code in ``schema.categories``.

    Parameters
    ----------
    estimator : object
        Fitted scikit-learn compatible classifier with ``predict_proba`` and ``classes_``.
    schema : FeatureSchema
        Input features in model order.
    favourable_class : int or str, default=1
        The label that means a good outcome for the applicant (approval).
    threshold : float, default=0.5
        Approve when P(favourable) >= threshold.
    name, version, sha256 : str
        Provenance, filled in by the registry.
    category_input : {"text", "category"}, default="text"
        How :meth:`frame` hands category features to the estimator: as text, or as pandas
        categoricals with the schema's categories (estimators that read the dtype).
    """

    estimator: Any
    schema: FeatureSchema
    favourable_class: Any = 1
    threshold: float = 0.5
    name: str = ""
    version: str = ""
    sha256: str = ""
    category_input: str = "text"
    stats: PredictStats = field(default_factory=PredictStats, repr=False, compare=False)
    _fast: Any = field(default=None, repr=False, compare=False)

    @property
    def favourable_index(self) -> int:
        classes = list(self.estimator.classes_)
        return classes.index(self.favourable_class)

    # -- conversions -------------------------------------------------------------------------
    def frame(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Return ``X`` as the frame the estimator expects (schema columns, order and dtypes)."""
        if isinstance(X, pd.DataFrame):
            out = X.loc[:, self.schema.names].copy()
            for spec in self.schema:
                if spec.dtype == "category":
                    out[spec.name] = self._category(out[spec.name].astype(str), spec)
                else:
                    out[spec.name] = pd.to_numeric(out[spec.name]).astype(float)
            return out
        M = np.asarray(X, dtype=float)
        cols: dict[str, Any] = {}
        for j, spec in enumerate(self.schema):
            if spec.dtype == "category":
                cats = np.asarray(spec.categories, dtype=object)
                cols[spec.name] = self._category(cats[M[:, j].astype(np.int64)], spec)
            else:
                cols[spec.name] = M[:, j]
        return pd.DataFrame(cols)

    def estimator_frame(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """``X`` as the estimator takes it: :meth:`frame`, its columns in the order the estimator
        was fitted on when that order is known (``feature_names_in_``) and differs from the
        schema's. Every call into the estimator (scores, explanations) maps columns here.

        Raises
        ------
        ValueError
            If the estimator was fitted on other features than the schema's.
        """
        out = self.frame(X)
        fitted = getattr(self.estimator, "feature_names_in_", None)
        if fitted is None or list(fitted) == self.schema.names:
            return out
        if sorted(map(str, fitted)) != sorted(self.schema.names):
            raise ValueError(
                f"model {self.name or '(unnamed)'}: the estimator was fitted on features "
                f"{list(fitted)}, the schema lists {self.schema.names}"
            )
        return out.loc[:, [str(c) for c in fitted]]

    def _category(self, values: Any, spec: Any) -> Any:
        if self.category_input == "category":
            return pd.Categorical(values, categories=list(spec.categories))
        return values

    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """Return ``X`` as a float matrix in schema order, categories as integer codes.

        Unknown categories become NaN.
        """
        out = np.empty((len(X), len(self.schema)), dtype=float)
        for j, spec in enumerate(self.schema):
            col = X[spec.name]
            if spec.dtype == "category":
                codes = pd.Categorical(col.astype(str), categories=list(spec.categories)).codes
                out[:, j] = np.where(codes < 0, np.nan, codes)
            else:
                out[:, j] = pd.to_numeric(col).to_numpy(dtype=float)
        return out

    # -- predictions -------------------------------------------------------------------------
    def score(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Probability of the favourable class, shape (n_samples,)."""
        if len(X) == 0:
            return np.empty(0, dtype=float)
        fast = self._fast_path()
        t0 = time.perf_counter()
        if fast is not None:
            M = self.matrix(X) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)
            p = fast(M)
        else:
            p = self.estimator.predict_proba(self.estimator_frame(X))[:, self.favourable_index]
        self.stats.seconds += time.perf_counter() - t0
        self.stats.calls += 1
        self.stats.rows += len(X)
        return np.asarray(p, dtype=float)

    def _fast_path(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """A numeric route around the recipe's ColumnTransformer, when it provably agrees.

        Candidate points are numeric matrices with category codes; going through strings and
        the OneHotEncoder costs more than the model itself. For pipelines built by
        TrainingRecipe (passthrough or StandardScaler, one-hot with the schema's categories)
        the same transform is a few array operations. It is checked once against the
        estimator's own path and used only if the two agree to the last bit.
        """
        if self._fast is not None:
            return self._fast or None
        self._fast = _numeric_transform(self) or False
        if self._fast:
            probe = self._probe_rows()
            slow = self.estimator.predict_proba(self.estimator_frame(probe))
            slow = slow[:, self.favourable_index]
            if not np.array_equal(self._fast(probe), slow):
                self._fast = False
        return self._fast or None

    def _probe_rows(self, n: int = 64) -> np.ndarray:
        """Rows spread over each feature's range and every category, for the agreement check."""
        rng = np.random.default_rng(0)
        cols = []
        for spec in self.schema:
            if spec.dtype == "category":
                cols.append(rng.integers(0, len(spec.categories), n).astype(float))
            else:
                lo, hi = spec.value_range
                lo = lo if lo is not None and np.isfinite(lo) else None
                hi = hi if hi is not None and np.isfinite(hi) else None
                # An open side spans 20 units from the other (a lower bound of 30 and no upper
                # bound probes [30, 50]), else [-10, 10].
                if lo is None:
                    lo = hi - 20.0 if hi is not None else -10.0
                if hi is None:
                    hi = lo + 20.0
                vals = rng.uniform(lo, hi, n)
                cols.append(np.round(vals) if spec.dtype in ("int", "bool") else vals)
        return np.column_stack(cols)

    def approve(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Boolean decision per row: True where the applicant is approved."""
        return self.score(X) >= self.threshold


def _numeric_transform(model: DecisionModel) -> Callable[[np.ndarray], np.ndarray] | None:
    """The recipe pipeline's prediction on code matrices, or None if the pipeline is another."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    est = model.estimator
    if not isinstance(est, Pipeline) or len(est.steps) != 2:
        return None
    pre, final = est.steps[0][1], est.steps[1][1]
    if not isinstance(pre, ColumnTransformer) or getattr(pre, "remainder", "drop") != "drop":
        return None
    names = model.schema.names
    blocks: list[Callable[[np.ndarray], np.ndarray]] = []
    for _, trans, cols in pre.transformers_:
        if trans == "drop":
            continue
        if not all(isinstance(c, str) and c in names for c in cols):
            return None
        idx = [names.index(c) for c in cols]
        # A fitted ColumnTransformer stores "passthrough" as an identity FunctionTransformer.
        identity = isinstance(trans, FunctionTransformer) and trans.func is None
        if trans == "passthrough" or identity:
            blocks.append(lambda M, idx=idx: M[:, idx])
        elif isinstance(trans, StandardScaler):
            mean = trans.mean_ if trans.with_mean else np.zeros(len(idx))
            scale = trans.scale_ if trans.with_std else np.ones(len(idx))
            blocks.append(lambda M, idx=idx, m=mean, s=scale: (M[:, idx] - m) / s)
        elif isinstance(trans, OneHotEncoder):
            if trans.drop_idx_ is not None or trans.handle_unknown != "ignore":
                return None
            for j, cats in zip(idx, trans.categories_, strict=True):
                if [str(c) for c in cats] != list(model.schema.features[j].categories):
                    return None
            sizes = [len(c) for c in trans.categories_]

            def onehot(M: np.ndarray, idx=idx, sizes=sizes) -> np.ndarray:
                out = np.zeros((len(M), sum(sizes)))
                offset = 0
                for j, k in zip(idx, sizes, strict=True):
                    code = M[:, j]
                    ok = np.isfinite(code) & (code >= 0) & (code < k)
                    rows = np.nonzero(ok)[0]
                    out[rows, offset + code[ok].astype(np.int64)] = 1.0
                    offset += k
                return out

            blocks.append(onehot)
        else:
            return None
    fav = model.favourable_index

    def predict(M: np.ndarray) -> np.ndarray:
        Xt = np.hstack([b(M) for b in blocks]) if len(blocks) > 1 else blocks[0](M)
        return final.predict_proba(Xt)[:, fav]

    return predict
