"""A fitted estimator bound to its feature schema, favourable class and decision threshold."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.schema import FeatureSchema


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
    """

    estimator: Any
    schema: FeatureSchema
    favourable_class: Any = 1
    threshold: float = 0.5
    name: str = ""
    version: str = ""
    sha256: str = ""
    stats: PredictStats = field(default_factory=PredictStats, repr=False, compare=False)

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
                    out[spec.name] = out[spec.name].astype(str)
                else:
                    out[spec.name] = pd.to_numeric(out[spec.name]).astype(float)
            return out
        M = np.asarray(X, dtype=float)
        cols: dict[str, Any] = {}
        for j, spec in enumerate(self.schema):
            if spec.dtype == "category":
                cats = np.asarray(spec.categories, dtype=object)
                cols[spec.name] = cats[M[:, j].astype(np.int64)]
            else:
                cols[spec.name] = M[:, j]
        return pd.DataFrame(cols)

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
        frame = self.frame(X)
        if len(frame) == 0:
            return np.empty(0, dtype=float)
        t0 = time.perf_counter()
        p = self.estimator.predict_proba(frame)[:, self.favourable_index]
        self.stats.seconds += time.perf_counter() - t0
        self.stats.calls += 1
        self.stats.rows += len(frame)
        return np.asarray(p, dtype=float)

    def approve(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Boolean decision per row: True where the applicant is approved."""
        return self.score(X) >= self.threshold
